import type { Db } from "../store/db.js";

export interface ConsumerRow {
  name: string;
  metadata: string;
  created_at: number;
  updated_at: number;
}

const COLS = "name, metadata, created_at, updated_at";

export function createConsumersStore(db: Db) {
  return {
    async insert(tx: Db, c: ConsumerRow): Promise<void> {
      await tx.exec(`INSERT INTO consumers (${COLS}) VALUES ($1, $2, $3, $4)`, [
        c.name,
        c.metadata,
        c.created_at,
        c.updated_at,
      ]);
    },
    async get(name: string): Promise<ConsumerRow | undefined> {
      return (await db.query<ConsumerRow>(`SELECT ${COLS} FROM consumers WHERE name = $1`, [name]))[0];
    },
    async list(after: string | undefined, limit: number): Promise<ConsumerRow[]> {
      return db.query<ConsumerRow>(`SELECT ${COLS} FROM consumers WHERE name > $1 ORDER BY name LIMIT $2`, [
        after ?? "",
        limit + 1,
      ]);
    },
    async update(tx: Db, name: string, metadata: string, now: number): Promise<ConsumerRow | undefined> {
      return (
        await tx.query<ConsumerRow>(
          `UPDATE consumers SET metadata = $2, updated_at = $3 WHERE name = $1 RETURNING ${COLS}`,
          [name, metadata, now],
        )
      )[0];
    },
    async delete(tx: Db, name: string): Promise<boolean> {
      return (await tx.exec("DELETE FROM consumers WHERE name = $1", [name])) > 0;
    },
  };
}

export type ConsumersStore = ReturnType<typeof createConsumersStore>;
