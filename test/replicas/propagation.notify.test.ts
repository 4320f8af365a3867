import { propagationCases } from "./propagation-cases.js";

// No KEYWARD_REDIS_URL: the replicas tell each other through PostgreSQL LISTEN/NOTIFY.
propagationCases("three replicas, PostgreSQL LISTEN/NOTIFY only", { redis: false, env: () => ({}) });
