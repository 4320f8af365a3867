import { readFileSync, rmSync, writeFileSync } from "node:fs";

/**
 * One server process per SQLite database. Caches (keys, agents, rate limits) live in each
 * process's memory and SQLite carries no change notifications, so a second `keyward serve` on the
 * same file would keep honouring a key the first one revoked. Refuse to start instead; replicas
 * need PostgreSQL (and Redis). A lock left by a process that died is taken over.
 *
 * A PID alone does not name a process: after a crash (or a container restart) the PID in a stale
 * lock may belong to an unrelated live process, and start would be refused forever. So the lock
 * holds `pid start boot`: the process's start time (field 22 of /proc/<pid>/stat, clock ticks since
 * boot) and the kernel's boot id. The holder is alive only if a process with that PID exists *and*
 * started at that time in that boot. Where /proc is missing (macOS, BSD) or the lock is an older,
 * PID-only one, a live PID still counts as the holder: refusing is the safe side, and the message
 * names the file to remove.
 */
export function lockSqlite(dbPath: string): { release(): void } {
  const lockPath = `${dbPath}.pid`;
  const mine = identity(process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, `${mine}\n`, { flag: "wx", mode: 0o600 });
      return {
        release() {
          try {
            if (readFileSync(lockPath, "utf8").trim() === mine) rmSync(lockPath);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const held = readFileSync(lockPath, "utf8").trim();
      const pid = holderPid(held);
      if (pid !== undefined && holderAlive(held, pid)) {
        throw new Error(
          `another keyward (pid ${pid}) is serving ${dbPath}; SQLite supports one server process (use PostgreSQL for replicas); if no keyward is running, remove ${lockPath}`,
        );
      }
      // Stale: its process is gone. Re-read first, so a lock another starting process has just
      // written in its place is not the one removed.
      if (readText(lockPath)?.trim() === held) rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`cannot lock ${dbPath}`);
}

/** The PID a lock names, or undefined for a lock that names none (junk, empty). */
function holderPid(held: string): number | undefined {
  const pid = Number(held.split(" ")[0]);
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid ? pid : undefined;
}

function holderAlive(held: string, pid: number): boolean {
  if (!isAlive(pid)) return false;
  const [, start, boot] = held.split(" ");
  if (start === undefined) return true; // an older PID-only lock: nothing more to compare
  const now = identity(pid);
  // No /proc here (or it went away): cannot tell a reused PID apart, so keep the lock.
  if (now === String(pid)) return true;
  return now === `${pid} ${start} ${boot ?? ""}`.trimEnd();
}

/** `pid start boot` where /proc tells them, else just `pid`. */
export function identity(pid: number): string {
  const start = startTime(pid);
  if (start === undefined) return String(pid);
  const boot = readText("/proc/sys/kernel/random/boot_id")?.trim();
  return boot ? `${pid} ${start} ${boot}` : `${pid} ${start}`;
}

function startTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2, the command name, is in parentheses and may itself hold spaces and ")": count
  // fields from after the last ")". Field 3 (state) is the first there; field 22 is starttime.
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  return start !== undefined && /^[0-9]+$/.test(start) ? start : undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
