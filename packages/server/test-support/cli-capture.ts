import { Readable } from "node:stream";
import type { CliIo } from "../src/cli/command.js";
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
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: opts.env,
  };
  // A stream, as process.stdin is.
  if (opts.stdin !== undefined) io.stdin = Readable.from([Buffer.from(opts.stdin)]);
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
