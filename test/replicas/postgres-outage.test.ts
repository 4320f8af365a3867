import { postgresOutageCases } from "./postgres-outage-cases.js";

// PostgreSQL stopped, from one replica: connections refused and closed (test/chaos has it stalled).
postgresOutageCases("stopped");
