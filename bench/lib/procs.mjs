// Child processes of the benchmark: started with a readiness pattern on stdout, all stopped on
// exit (normal end, error, Ctrl-C), so no server outlives `npm run bench`.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";

const children = new Set();
const tempDirs = new Set();
let stopping = false;

/** Registers a child started elsewhere so it is stopped with the rest. */
export function track(name, child, stopSignal = "SIGTERM") {
  const entry = { name, child, stopSignal };
  children.add(entry);
  child.once("exit", () => children.delete(entry));
  return child;
}

/**
 * Spawns `cmd args` and resolves with the first match of `ready` on its stdout. Rejects with the
 * child's output if it exits first or is not ready within `timeoutMs`.
 */
export function startProcess(name, cmd, args, { env, ready, timeoutMs = 20_000, stopSignal = "SIGTERM" } = {}) {
  const child = track(
    name,
    spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }),
    stopSignal,
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => {
    err += d;
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    function fail(why) {
      clearTimeout(timer);
      reject(new Error(`${name}: ${why}\n${out}${err}`.trim()));
    }
    const onData = (d) => {
      out += d;
      const m = ready ? ready.exec(out) : [];
      if (m) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        child.stdout.resume();
        child.once("exit", (code, signal) => {
          if (!stopping)
            process.stderr.write(`bench: ${name} exited unexpectedly (${code ?? signal}): ${err.trim()}\n`);
        });
        resolve({ child, match: m, stderr: () => err });
      }
    };
    child.stdout.on("data", onData);
    child.once("error", (e) => fail(e.message));
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal})`));
    if (!ready) onData("");
  });
}

/** A directory removed at the end of the run. */
export function removeLater(dir) {
  tempDirs.add(dir);
  return dir;
}

/** Stops every child (its stop signal, then SIGKILL after `graceMs`) and removes temp dirs. */
export async function stopAll(graceMs = 5_000) {
  stopping = true;
  const waits = [...children].map(
    ({ child, stopSignal }) =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill(stopSignal);
      }),
  );
  await Promise.all(waits);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Last resort on a synchronous exit path: no waiting possible, so kill hard and clean up. */
export function killAllNow() {
  stopping = true;
  for (const { child, stopSignal } of children) {
    // nginx's master must stop its workers itself: never SIGKILL it first.
    child.kill(stopSignal === "SIGQUIT" ? "SIGTERM" : "SIGKILL");
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
