import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

/**
 * KEYWARD_ADMIN_TOKEN only sets the first admin token of an empty store. Set on a store that
 * already has others (an example's token after the quick start had created ./.keyward), it used
 * to be ignored without a word; `keyward serve` now says so at start, without printing it.
 */

const BIN = join(import.meta.dirname, "../packages/server/dist/cli/main.js");
const WARNING = "KEYWARD_ADMIN_TOKEN (admin_token) is set but not used";

interface Serve {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<void>;
}

const running: Serve[] = [];
let dir: string | undefined;

afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** `keyward serve` on `dataDir`; resolves at its `listening on` line (an event, never a sleep). */
function serve(dataDir: string, env: Record<string, string> = {}): Promise<Serve> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", "--data-dir", dataDir], {
    env: { PATH: process.env.PATH ?? "", KEYWARD_LOG_LEVEL: "warn", KEYWARD_LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        const s = { child, url: m[1] as string, stdout: () => out, stderr: () => err, stop };
        running.push(s);
        resolve(s);
      }
    });
    exited.then(() => reject(new Error(`keyward serve exited before listening: ${err}`)));
  });
}

/** Stops the server: its log is complete once it has exited (the destination is asynchronous). */
async function logsOf(s: Serve): Promise<string> {
  await s.stop();
  return s.stderr();
}

const adminStatus = async (url: string, token: string) =>
  (await fetch(`${url}/admin/v1/agents`, { headers: { authorization: `Bearer ${token}` } })).status;

describe("KEYWARD_ADMIN_TOKEN on a store that already has admin tokens", () => {
  it("warns at start that it is not used, never printing it, and the token is refused", async () => {
    dir = mkdtempSync(join(tmpdir(), "keyward-admin-ignored-"));
    const first = await serve(dir); // the quick start: a generated kwa_… token
    const generated = /admin token: (kwa_\w+)/.exec(first.stdout())?.[1] as string;
    expect(generated).toBeDefined();
    expect(await logsOf(first)).not.toContain(WARNING);

    const exampleToken = "an-admin-token-of-at-least-32-characters";
    const second = await serve(dir, { KEYWARD_ADMIN_TOKEN: exampleToken });
    expect(await adminStatus(second.url, exampleToken)).toBe(401);
    expect(await adminStatus(second.url, generated)).toBe(200);
    const logs = await logsOf(second);
    expect(logs).toContain(WARNING);
    expect(logs).toContain("keyward admin-token reset");
    const warning = logs.split("\n").find((l) => l.includes(WARNING)) as string;
    expect(JSON.parse(warning)).toMatchObject({ level: expect.stringMatching(/^(warn|40)$/) });
    expect(`${logs}${second.stdout()}`).not.toContain(exampleToken);
    expect(`${logs}${second.stdout()}`).not.toContain(generated);
  });

  it("does not warn when the token is the one the store was started with", async () => {
    dir = mkdtempSync(join(tmpdir(), "keyward-admin-used-"));
    const token = "admin-token-used-on-every-start-0123456789";
    const first = await serve(dir, { KEYWARD_ADMIN_TOKEN: token });
    expect(first.stdout()).not.toContain("admin token:");
    await first.stop();
    const again = await serve(dir, { KEYWARD_ADMIN_TOKEN: token });
    expect(await adminStatus(again.url, token)).toBe(200);
    expect(await logsOf(again)).not.toContain(WARNING);
  });
});
