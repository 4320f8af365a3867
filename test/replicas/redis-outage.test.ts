import { redisOutageCases } from "./redis-outage-cases.js";

// Redis stopped (killed) and started again (test/chaos has it stalled).
redisOutageCases("stopped");
