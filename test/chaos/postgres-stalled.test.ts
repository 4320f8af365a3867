import { postgresOutageCases } from "../replicas/postgres-outage-cases.js";

// PostgreSQL stalled, from one replica: its connections go silent (no error, no close), and only
// the database timeouts of docs/operations.md turn that into answers (test/replicas has it stopped).
postgresOutageCases("stalled");
