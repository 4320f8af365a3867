import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningKeyward, type StartOptions, startKeyward } from "../app.js";
import { type Config, loadConfig } from "../config.js";
import { silentLogger } from "../ops/logger.js";

export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop";
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

export interface TestServer extends RunningKeyward {
  adminToken: string;
  dataDir: string;
  config: Config;
  /** fetch against the admin API with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** An in-process Keyward on a free port, on SQLite in a temp dir (or the given database). */
export async function startTestServer(
  overrides: Record<string, string> = {},
  opts: StartOptions = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-test-"));
  const config = loadConfig({
    env: {
      KEYWARD_PORT: "0",
      KEYWARD_DATA_DIR: dataDir,
      KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      KEYWARD_MASTER_KEY: TEST_MASTER_KEY,
      KEYWARD_LOG_LEVEL: "silent",
      ...overrides,
    },
  });
  const running = await startKeyward(config, { logger: silentLogger(), ...opts });
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${running.url}/admin/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TEST_ADMIN_TOKEN}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    ...running,
    adminToken: TEST_ADMIN_TOKEN,
    dataDir,
    config,
    admin,
    close: async () => {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
