import { type ChildProcess, spawn } from "node:child_process";

/** What {@link RunFunction} answers: the child's whole output (redacted later, with the result). */
export interface RunResult {
  stdout: string;
  stderr: string;
  /** `null` when the child was ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  cwd?: string;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Uint8Array;
  /** Output beyond this many bytes (stdout and stderr together) kills the child. Default 16 MiB. */
  maxOutputBytes?: number;
}

/**
 * Runs a command with the call's environment (the user's credentials in it) and answers its
 * output; a non-zero exit is an answer, not an error. No shell: arguments are passed as they are.
 */
export type RunFunction = (command: string, args?: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/**
 * Children lead their own process group (POSIX), so the whole tree they start can be killed at
 * once: a grandchild holds the user's credentials in its environment just as the child does.
 */
const GROUPS = process.platform !== "win32";

/** SIGKILL to the child's process group (the child alone on Windows); gone already is fine. */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    if (GROUPS) process.kill(-child.pid, "SIGKILL");
    else child.kill("SIGKILL");
  } catch {
    // ESRCH: nothing left to kill.
  }
}

/**
 * `ctx.run` for env tools: `spawn` with `env`; the deadline (or the caller's cancellation) kills
 * the child and everything it started with SIGKILL: a CLI stuck on a network read, or a helper it
 * left running, must not outlive the call holding the user's credentials. Once the call is
 * cancelled, run answers as soon as the child is gone, even when a descendant that escaped the
 * group (setsid) still holds its stdout open; whatever the child left in its group when it exits
 * normally is killed too.
 */
export function createRun(env: Record<string, string>, signal: AbortSignal): RunFunction {
  return (command, args = [], opts = {}) =>
    new Promise<RunResult>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const limit = opts.maxOutputBytes ?? 16 * 1024 * 1024;
      const child = spawn(command, [...args], {
        env,
        cwd: opts.cwd,
        detached: GROUPS,
        stdio: ["pipe", "pipe", "pipe"],
        shell: false,
      });
      let settled = false;
      let exited = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      const cancelled = () => {
        child.stdout.destroy();
        child.stderr.destroy();
        settle(() => reject(signal.reason));
      };
      function onAbort() {
        killTree(child);
        if (exited) cancelled();
        else child.once("exit", cancelled);
      }
      child.once("exit", () => {
        exited = true;
      });
      signal.addEventListener("abort", onAbort, { once: true });

      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let overflow = false;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          overflow = true;
          killTree(child);
          return;
        }
        into.push(chunk);
      };
      child.stdout.on("data", collect(out));
      child.stderr.on("data", collect(err));
      child.stdin.on("error", () => {}); // a child that exits without reading its input
      child.stdin.end(opts.input);
      child.once("error", (e) => {
        // Aborted: answer once the child is gone, not while it may still be running.
        if (signal.aborted) return;
        settle(() => reject(e));
      });
      child.once("close", (exitCode, sig) => {
        killTree(child);
        if (signal.aborted) settle(() => reject(signal.reason));
        else if (overflow) settle(() => reject(new RangeError(`${command} wrote more than ${limit} bytes`)));
        else
          settle(() =>
            resolve({
              stdout: Buffer.concat(out).toString("utf8"),
              stderr: Buffer.concat(err).toString("utf8"),
              exitCode,
              signal: sig,
            }),
          );
      });
    });
}
