import { type Db, isUniqueViolation } from "../store/db.js";

/** Digests of leak reports already acted on (replay protection), kept for the replay window. */
export function createLeaksStore(db: Db) {
  return {
    /** True when this digest is new (and is now remembered); false for a report seen before. */
    async remember(digest: string, now: number): Promise<boolean> {
      try {
        await db.exec("INSERT INTO leak_reports (digest, seen_at) VALUES ($1, $2)", [digest, now]);
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },
    /** Forgets a digest (the report could not be acted on, so its sender may send it again). */
    async forget(digest: string): Promise<void> {
      await db.exec("DELETE FROM leak_reports WHERE digest = $1", [digest]);
    },
    async prune(before: number): Promise<void> {
      await db.exec("DELETE FROM leak_reports WHERE seen_at < $1", [before]);
    },
  };
}

export type LeaksStore = ReturnType<typeof createLeaksStore>;
