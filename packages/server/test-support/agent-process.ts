import { type ChildProcess, spawn } from "node:child_process";

export interface AgentProcess {
  child: ChildProcess;
  /** The URL from the script's `listening on http://…` line. */
  url: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once stdout has a line matching `pattern` (already there or still to come). */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs an example script with `node`, the way its README does, with only the environment given
 * (plus PATH), and resolves when it prints `listening on http://…`. Waiting is on output, never
 * on a timer.
 */
export async function startAgentProcess(script: string, env: Record<string, string>): Promise<AgentProcess> {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  void exited.then(() => {
    for (const w of [...waiters]) w();
  });

  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(out);
        if (m) {
          waiters.delete(check);
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          reject(
            new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}: ${err}`),
          );
        }
      };
      waiters.add(check);
      check();
    });

  const listening = await waitFor(/listening on (http:\/\/\S+)/);
  return {
    child,
    url: listening[1] as string,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/**
 * Runs a script to its end and answers its exit code and output (asynchronously: an in-process
 * Keyward must keep serving meanwhile, so no spawnSync).
 */
export function runAgentToExit(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}
