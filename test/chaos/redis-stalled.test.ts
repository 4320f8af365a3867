import { redisOutageCases } from "../replicas/redis-outage-cases.js";

// Redis stalled: its connections go silent, no error and no close; only command timeouts notice
// (test/replicas has it stopped).
redisOutageCases("stalled");
