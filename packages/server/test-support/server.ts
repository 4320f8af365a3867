import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunningKeyward, StartOptions } from "../src/app.js";
import type { Config } from "../src/config.js";
import { startTestServerAt } from "./server-at.js";

export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop";
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

export interface TestServer extends RunningKeyward {
  adminToken: string;
  dataDir: string;
  config: Config;
  /** fetch against the admin API with the admin token. */
  // biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** What `startKeyward` takes, plus a config file (YAML or JSON) for settings with no env variable. */
export interface TestStartOptions extends StartOptions {
  configFile?: string;
}

/** An in-process Keyward on a free port, on SQLite in a temp dir removed on close. */
export async function startTestServer(
  overrides: Record<string, string> = {},
  opts: TestStartOptions = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-test-"));
  const server = await startTestServerAt(dataDir, overrides, opts);
  return {
    ...server,
    close: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
