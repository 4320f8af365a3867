import { runCli } from "../src/cli/main.js";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `keyward <argv>` in process, as an operator types it, capturing what it prints. */
export async function captureCli(
  argv: string[],
  opts: { env: Record<string, string | undefined>; stdin?: string | undefined },
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: opts.env,
    ...(opts.stdin !== undefined ? { stdin: [Buffer.from(opts.stdin)] } : {}),
  });
  return { code, stdout, stderr };
}
