// What the examples' start scripts share: their settings from the environment, Keyward's admin
// API with errors a person can act on, the agent run as its own process, and one line (never a
// stack trace) when something they need is missing.
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";

/** A problem the person running the example can fix; its message is the whole story. */
export class ExampleError extends Error {}

/**
 * Runs `main` when `moduleUrl` is the script node was started with. A failure prints
 * `<name>: cannot start: <why>` on one line and exits 1: an ExampleError says what to do, anything
 * else only its message (never the stack).
 */
export function runIfMain(moduleUrl, name, main) {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((err) => {
    console.error(`${name}: cannot start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}

/** An environment variable that must be set, or an ExampleError naming it and what it is for. */
export function requiredEnv(name, why) {
  const value = process.env[name];
  if (value === undefined || value === "") throw new ExampleError(`${name} is not set: ${why}`);
  return value;
}

/** KEYWARD_URL without a trailing slash (tokens' issuer is compared with it exactly). */
export function keywardUrlFromEnv() {
  return requiredEnv("KEYWARD_URL", "Keyward's base URL, e.g. http://127.0.0.1:8080").replace(/\/+$/, "");
}

/**
 * Keyward's admin API. Resolves with the parsed body for the `expected` statuses (default: any
 * 2xx); otherwise throws an ExampleError that says what went wrong and what to do about it.
 */
export function adminClient(keywardUrl, adminToken) {
  return async (method, path, body, expected) => {
    let res;
    try {
      res = await fetch(`${keywardUrl}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new ExampleError(
        `cannot reach Keyward at ${keywardUrl} (${err.cause?.code ?? err.cause?.errors?.[0]?.code ?? err.message}): is it running?`,
      );
    }
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (expected ? expected.includes(res.status) : res.ok) return { status: res.status, body: parsed };
    if (res.status === 401) {
      throw new ExampleError(
        `Keyward at ${keywardUrl} refused KEYWARD_ADMIN_TOKEN (401): it is not an admin token of that server's store. KEYWARD_ADMIN_TOKEN only sets the first admin token of an empty data dir (the server warns at start when it is ignored): start the example's Keyward with its own --data-dir, as its README shows`,
      );
    }
    const e = parsed?.error;
    throw new ExampleError(
      `Keyward admin API: ${method} ${path} answered ${res.status}${e?.code ? ` (${e.code}: ${e.message})` : ""}`,
    );
  };
}

/** Creates the agent, or points an existing one at `upstream`: running an example again is fine. */
export async function upsertAgent(admin, name, upstream, description) {
  const created = await admin("POST", "/agents", { name, upstream, description }, [201, 409]);
  if (created.status === 409) await admin("PATCH", `/agents/${name}`, { upstream });
}

/**
 * Runs `node script` as its own process with exactly `env` (plus PATH): the agent gets nothing the
 * start script holds. Its output is passed through (its errors once it listens); resolves with `{url, stop}` at its
 * `listening on` line, or throws an ExampleError with its last error line if it exits first.
 */
export function startAgent(script, env) {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let listening = false;
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  // Until it listens, its errors are kept for the one line this start fails with.
  child.stderr.setEncoding("utf8").on("data", (d) => {
    err += d;
    if (listening) process.stderr.write(d);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d) => {
      process.stdout.write(d);
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m && !listening) {
        listening = true;
        resolve({ url: m[1], stop, exited });
      }
    });
    exited.then((code) => {
      const last = err.trim().split("\n").at(-1) ?? "";
      reject(new ExampleError(`the agent exited (${code}) before listening${last ? `: ${last}` : ""}`));
    });
  });
}

/** Stops everything started so far on Ctrl-C or SIGTERM, then exits 0. */
export function stopOnSignal(...closers) {
  const stop = async () => {
    for (const close of closers) await close?.();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
