import { spawn } from "node:child_process";

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
 * `ctx.run` for env tools: `spawn` with `env` and the call's `signal`, so the deadline (or the
 * caller's cancellation) kills the child with SIGKILL; a CLI stuck on a network read must not
 * outlive the call holding the user's credentials.
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
        signal,
        killSignal: "SIGKILL",
        stdio: ["pipe", "pipe", "pipe"],
        shell: false,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let overflow = false;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          overflow = true;
          child.kill("SIGKILL");
          return;
        }
        into.push(chunk);
      };
      child.stdout.on("data", collect(out));
      child.stderr.on("data", collect(err));
      child.stdin.on("error", () => {}); // a child that exits without reading its input
      child.stdin.end(opts.input);
      let failed = false;
      child.once("error", (e) => {
        // Aborted: answer once the child is gone ("close"), not while it may still be running.
        if (signal.aborted) return;
        failed = true;
        reject(e);
      });
      child.once("close", (exitCode, sig) => {
        if (failed) return;
        if (signal.aborted) reject(signal.reason);
        else if (overflow) reject(new RangeError(`${command} wrote more than ${limit} bytes`));
        else
          resolve({
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            exitCode,
            signal: sig,
          });
      });
    });
}
