// CPU time a process (and its live children, e.g. nginx's worker) has used, from /proc. Divided by
// the requests it served, it gives CPU per request: unlike requests/s, it barely moves when other
// work on a shared machine takes cores away, so it shows what each proxy costs even on a noisy box.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** Seconds of CPU (user + system) used by `pid` and its live children; undefined without /proc. */
export function cpuSeconds(pid) {
  const own = stat(pid);
  if (!own) return undefined;
  let ticks = own.ticks;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(entry);
    if (s && s.ppid === pid) ticks += s.ticks;
  }
  return ticks / TICKS;
}
