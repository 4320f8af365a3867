import type { Db } from "../store/db.js";

export interface AgentRow {
  name: string;
  upstream: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

const COLS = "name, upstream, description, created_at, updated_at";
/** Inside a transaction on PostgreSQL, lock what we read (SQLite transactions are serial already). */
const forUpdate = (tx: Db) => (tx.engine === "postgres" ? " FOR UPDATE" : "");

export function createAgentsStore(db: Db) {
  return {
    async insert(tx: Db, a: AgentRow): Promise<void> {
      await tx.exec(`INSERT INTO agents (${COLS}) VALUES ($1, $2, $3, $4, $5)`, [
        a.name,
        a.upstream,
        a.description,
        a.created_at,
        a.updated_at,
      ]);
    },
    async get(name: string, tx: Db = db): Promise<AgentRow | undefined> {
      // Locked only inside a change's transaction: a plain read (the gateway loading an agent)
      // must never queue behind a transaction that changes it.
      const lock = tx === db ? "" : forUpdate(tx);
      return (await tx.query<AgentRow>(`SELECT ${COLS} FROM agents WHERE name = $1${lock}`, [name]))[0];
    },
    async list(after: string | undefined, limit: number): Promise<AgentRow[]> {
      return db.query<AgentRow>(`SELECT ${COLS} FROM agents WHERE name > $1 ORDER BY name LIMIT $2`, [
        after ?? "",
        limit + 1,
      ]);
    },
    async update(
      tx: Db,
      name: string,
      upstream: string,
      description: string | null,
      now: number,
    ): Promise<AgentRow | undefined> {
      return (
        await tx.query<AgentRow>(
          `UPDATE agents SET upstream = $2, description = $3, updated_at = $4 WHERE name = $1 RETURNING ${COLS}`,
          [name, upstream, description, now],
        )
      )[0];
    },
    async delete(tx: Db, name: string): Promise<boolean> {
      return (await tx.exec("DELETE FROM agents WHERE name = $1", [name])) > 0;
    },
  };
}

export type AgentsStore = ReturnType<typeof createAgentsStore>;
