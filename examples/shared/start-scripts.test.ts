import { spawn } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../packages/server/test-support/server.js";
import { newStandinKey, startOpenAIStandin } from "./openai-standin.mjs";

/**
 * The examples' user-facing pieces: the offline OpenAI stand-in, driven by the real `openai`
 * client, and the start scripts' failures, which must be one line saying what to do.
 */

const EXAMPLES = join(import.meta.dirname, "..");

let kw: TestServer;
beforeAll(async () => {
  kw = await startTestServer();
});
afterAll(async () => {
  await kw?.close();
});

/** `node script ...args` with only `env` (plus PATH), to its end. */
function run(script: string, args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(EXAMPLES, script), ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
}

/** A port nothing listens on (closed again before use). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function expectOneLine(result: { code: number | null; stderr: string }, prefix: string, says: RegExp) {
  expect(result.code).toBe(1);
  const lines = result.stderr.trim().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${prefix}: cannot start: `));
  expect(lines[0]).toMatch(says);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe("the offline OpenAI stand-in", () => {
  it("answers the openai client with the key it expects: chat, streamed chat, models, embeddings", async () => {
    const key = newStandinKey();
    const standin = await startOpenAIStandin({ keys: [key] });
    try {
      const client = new OpenAI({ apiKey: key, baseURL: standin.baseURL });
      const chat = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "Say hello in French" }],
      });
      expect(chat.choices[0]?.message.content).toBe("(offline stand-in for gpt-4o-mini) You said: Say hello in French");
      const stream = await client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "stream it" }],
        stream: true,
      });
      let streamed = "";
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
      expect(streamed).toBe("(offline stand-in for gpt-4o) You said: stream it");
      expect((await client.models.list()).data.map((m) => m.id)).toContain("gpt-4o-mini");
      const embedding = await client.embeddings.create({ model: "text-embedding-3-small", input: "rotation" });
      expect(embedding.data[0]?.embedding).toHaveLength(8);
    } finally {
      await standin.close();
    }
  });

  it("refuses any other key with OpenAI's 401, quoting it masked", async () => {
    const standin = await startOpenAIStandin({ keys: [newStandinKey()] });
    try {
      const wrong = newStandinKey();
      const client = new OpenAI({ apiKey: wrong, baseURL: standin.baseURL, maxRetries: 0 });
      const err = await client.models.list().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("invalid_api_key");
      expect((err as Error).message).toContain(`Incorrect API key provided: sk-********${wrong.slice(-4)}`);
      expect((err as Error).message).not.toContain(wrong.slice(3, -4));
    } finally {
      await standin.close();
    }
  });
});

describe("start scripts: one line saying what to do, never a stack trace", () => {
  it("multi-agent: an admin token the server's store does not hold (the quick start made it)", async () => {
    const r = await run("multi-agent/start.mjs", [], {
      KEYWARD_URL: kw.url,
      KEYWARD_ADMIN_TOKEN: "an-admin-token-of-at-least-32-characters",
    });
    expectOneLine(r, "multi-agent/start.mjs", /refused KEYWARD_ADMIN_TOKEN \(401\).*--data-dir/);
    expect(r.stderr).not.toContain("an-admin-token-of-at-least-32-characters");
  });

  it("openai-agent: Keyward not running", async () => {
    const r = await run("openai-agent/start.mjs", ["--offline"], {
      KEYWARD_URL: `http://127.0.0.1:${await closedPort()}`,
      KEYWARD_ADMIN_TOKEN: kw.adminToken,
    });
    expectOneLine(r, "openai-agent/start.mjs", /cannot reach Keyward at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it("egress-agent: the agent's port is taken", async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    try {
      const r = await run("egress-agent/start.mjs", ["--offline"], {
        KEYWARD_URL: kw.url,
        KEYWARD_ADMIN_TOKEN: kw.adminToken,
        PORT: String((busy.address() as net.AddressInfo).port),
      });
      expectOneLine(r, "egress-agent/start.mjs", /the agent exited \(1\) before listening: .*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it("openai-agent: no OpenAI key and no --offline", async () => {
    const r = await run("openai-agent/start.mjs", [], { KEYWARD_URL: kw.url, KEYWARD_ADMIN_TOKEN: kw.adminToken });
    expectOneLine(r, "openai-agent/start.mjs", /OPENAI_API_KEY is not set: .*--offline/);
  });

  it("egress-agent: no admin token, and an unknown flag", async () => {
    const noToken = await run("egress-agent/start.mjs", ["--offline"], { KEYWARD_URL: kw.url });
    expectOneLine(noToken, "egress-agent/start.mjs", /KEYWARD_ADMIN_TOKEN is not set/);
    const badFlag = await run("egress-agent/start.mjs", ["--ofline"], {
      KEYWARD_URL: kw.url,
      KEYWARD_ADMIN_TOKEN: kw.adminToken,
    });
    expectOneLine(badFlag, "egress-agent/start.mjs", /--ofline.*the one flag is --offline/);
  });
});
