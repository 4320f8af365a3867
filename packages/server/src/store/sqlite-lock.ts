import { readFileSync, rmSync, writeFileSync } from "node:fs";

/**
 * One server process per SQLite database. Caches (keys, agents, rate limits) live in each
 * process's memory and SQLite carries no change notifications, so a second `keyward serve` on the
 * same file would keep honouring a key the first one revoked. Refuse to start instead; replicas
 * need PostgreSQL (and Redis). A lock left by a process that died is taken over.
 */
export function lockSqlite(dbPath: string): { release(): void } {
  const lockPath = `${dbPath}.pid`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return {
        release() {
          try {
            if (readFileSync(lockPath, "utf8").trim() === String(process.pid)) rmSync(lockPath);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `another keyward (pid ${pid}) is serving ${dbPath}; SQLite supports one server process (use PostgreSQL for replicas)`,
        );
      }
      rmSync(lockPath, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`cannot lock ${dbPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
