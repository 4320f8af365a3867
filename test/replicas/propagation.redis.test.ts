import { redisUrl } from "./harness.js";
import { propagationCases } from "./propagation-cases.js";

propagationCases("three replicas, Redis pub/sub", {
  redis: true,
  env: () => ({ KEYWARD_REDIS_URL: redisUrl as string }),
});
