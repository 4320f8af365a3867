import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";

// The child runs the built SDK, as a user's agent would (`npm test` builds first).
const SDK = pathToFileURL(fileURLToPath(new URL("../../dist/index.js", import.meta.url))).href;

/**
 * An agent process that connects, waits for one rotation, closes, and then does nothing: it must
 * exit by itself. It prints how long that took after close.
 */
const AGENT = `
import { Keyward } from ${JSON.stringify(SDK)};
const kw = await Keyward.connect(JSON.parse(process.env.KW_OPTIONS));
console.log("value " + kw.get("openai"));
const changed = new Promise((resolve) => kw.on("change", resolve));
console.log("ready");
await changed;
console.log("value " + kw.get("openai"));
await kw.close();
const closedAt = performance.now();
console.log("closed");
process.on("exit", () => console.log("exit after " + Math.round(performance.now() - closedAt) + " ms"));
`;

let fake: FakeKeyward;
let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  fake = await new FakeKeyward().start();
  fake.set("openai", "sk-one");
  dir = mkdtempSync(join(tmpdir(), "keyward-close-"));
});

afterEach(async () => {
  // A failed test must not leave its agent running.
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runAgent(options: Record<string, unknown>): Promise<{ code: number | null; out: string[] }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", AGENT], {
    env: { ...process.env, KW_OPTIONS: JSON.stringify({ url: fake.url, token: fake.token, ...options }) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const out: string[] = [];
  let rotated = false;
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    out.push(...chunk.trim().split("\n"));
    if (!rotated && out.includes("ready")) {
      rotated = true;
      void (options.pollIntervalMs === undefined ? fake.waitForStreams(1) : Promise.resolve()).then(() =>
        fake.set("openai", "sk-two"),
      );
    }
  });
  // A handle left open would keep the child alive: the test would then time out, not pass.
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  return { code, out };
}

/**
 * A leaked socket or a repeating timer would keep the child alive indefinitely, a pending backoff
 * for up to 30 s; Node itself takes up to about a second to let go of fetch's pooled connections.
 */
function expectPromptExit(code: number | null, out: string[]): void {
  expect(out.slice(0, 4)).toEqual(["value sk-one", "ready", "value sk-two", "closed"]);
  expect(code).toBe(0);
  const after = Number(/^exit after (\d+) ms$/.exec(out[4] ?? "")?.[1]);
  expect(after).toBeLessThan(5_000);
}

describe("close", () => {
  it("leaves nothing running: an agent that closes exits by itself (event stream)", async () => {
    const { code, out } = await runAgent({});
    expectPromptExit(code, out);
  });

  it("leaves nothing running with polling and the disk cache in use", async () => {
    fake.eventsStatus = 404;
    const { code, out } = await runAgent({
      pollIntervalMs: 20,
      cacheFile: join(dir, "cache"),
      cacheKey: Buffer.alloc(32, 3).toString("base64"),
    });
    expectPromptExit(code, out);
  });
});
