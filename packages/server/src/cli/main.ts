#!/usr/bin/env node
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ApiError, UnreachableError } from "./admin-client.js";
import { firstPositional, GLOBAL_OPTIONS, UsageError } from "./args.js";
import { type CliIo, DEFAULT_URL, type Group, groupUsage, runGroup, wantsHelp } from "./command.js";
import { adminTokens } from "./commands/admin-tokens.js";
import { agents } from "./commands/agents.js";
import { alerts, alertsArgv } from "./commands/alerts.js";
import { audit } from "./commands/audit.js";
import { consumers } from "./commands/consumers.js";
import { credentials } from "./commands/credentials.js";
import { grants } from "./commands/grants.js";
import { keys } from "./commands/keys.js";
import { masterKey } from "./commands/master-key.js";
import { signingKeys } from "./commands/signing-keys.js";
import { usage, usageArgv } from "./commands/usage.js";
import { users, usersArgv } from "./commands/users.js";
import { columns } from "./help.js";

export type { CliIo } from "./command.js";

/** Admin command groups; a new group is one module and one line here. */
const GROUPS: Record<string, Group> = {
  agents,
  consumers,
  keys,
  credentials,
  grants,
  audit,
  usage,
  alerts,
  "signing-keys": signingKeys,
  "master-key": masterKey,
  users,
  "admin-tokens": adminTokens,
};

function mainUsage(): string {
  return [
    "usage: keyward <command> [flags]",
    "",
    "commands:",
    ...columns([
      ["serve", "run the Keyward server (keyward serve --help)"],
      ["admin-token reset", "replace every admin token (offline, on the store)"],
      ...Object.values(GROUPS).map((g) => [g.name, g.summary] as const),
    ]),
    "",
    "global flags (admin commands):",
    ...columns([
      ["--url URL", `Keyward server (env KEYWARD_URL, default ${DEFAULT_URL})`],
      ["--token TOKEN", "admin token (env KEYWARD_ADMIN_TOKEN; prefer the env, flags show up in ps)"],
      ["--json", "print the server's JSON response instead of a table"],
      ["-h, --help", "show usage"],
      ["--version", "print the version"],
    ]),
    "",
    "run 'keyward <command> --help' for that command's usage.",
    "times are shown in UTC; exit codes: 0 ok, 1 error from or reaching the server, 2 bad usage.",
    "",
  ].join("\n");
}

/**
 * Runs one CLI invocation and answers the exit code. Never calls process.exit, so tests can run
 * it in-process with collecting streams.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let hint = "keyward --help";
  try {
    const at = firstPositional(argv, GLOBAL_OPTIONS);
    const name = at === -1 ? undefined : argv[at]!;
    const rest = at === -1 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1)];

    if (name === undefined) {
      if (argv.includes("--version")) io.stdout.write(`${version()}\n`);
      else if (wantsHelp(argv)) io.stdout.write(mainUsage());
      else throw new UsageError("missing command");
      return 0;
    }
    if (name === "serve") {
      // Loaded on demand: admin commands should not pay for the server's dependencies.
      const { runServe } = await import("./serve.js");
      await runServe(rest);
      return 0;
    }
    if (name === "admin-token") {
      const { runAdminToken } = await import("./admin-token.js");
      return await runAdminToken(rest, io);
    }
    if (name === "help") return help(rest, io);
    const group = Object.hasOwn(GROUPS, name) ? GROUPS[name] : undefined;
    if (!group) throw new UsageError(`unknown command '${name}'`);
    hint = `keyward ${group.name} --help`;
    const argvOf =
      group === users ? usersArgv : group === usage ? usageArgv : group === alerts ? alertsArgv : (a: string[]) => a;
    await runGroup(group, argvOf(rest), io);
    return 0;
  } catch (err) {
    return report(err, hint, io);
  }
}

function help(rest: string[], io: CliIo): number {
  const target = rest.find((a) => !a.startsWith("-"));
  const group = target !== undefined && Object.hasOwn(GROUPS, target) ? GROUPS[target] : undefined;
  if (target !== undefined && !group) throw new UsageError(`unknown command '${target}'`);
  io.stdout.write(group ? groupUsage(group) : mainUsage());
  return 0;
}

/** Maps every failure to one line on stderr and an exit code. The admin token is never part of it. */
function report(err: unknown, hint: string, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr.write(`error: ${err.message}\nsee '${hint}'\n`);
    return 2;
  }
  if (err instanceof ApiError) {
    io.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return 1;
  }
  if (err instanceof UnreachableError) {
    io.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  io.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

function version(): string {
  // ../../package.json is the server package from both src/cli and dist/cli.
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** True when this file is the program being run (through npm's bin symlink too), not an import. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/**
 * Runs the CLI as a program: the process's arguments and streams, its exit code. Called when this
 * file is run directly, and by the `keyward` bin (packages/server/bin/keyward.js).
 */
export async function main(): Promise<void> {
  // `keyward keys list | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stdin: process.stdin,
  });
  // exitCode rather than exit(): pending stdout is flushed, and `serve` keeps the process alive
  // after runServe resolves, until its own signal handling ends it.
  process.exitCode = code;
}

if (isEntryPoint()) await main();
