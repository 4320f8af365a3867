import { startKeyward } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { silentLogger } from "../src/ops/logger.js";
import { TEST_ADMIN_TOKEN, TEST_MASTER_KEY, type TestServer, type TestStartOptions } from "./server.js";

/**
 * Like startTestServer, but on a data dir the caller owns: close() leaves it in place, so a test
 * can stop Keyward and start it again on the same files (restart tests). The caller removes it.
 */
export async function startTestServerAt(
  dataDir: string,
  overrides: Record<string, string> = {},
  opts: TestStartOptions = {},
): Promise<TestServer> {
  const { configFile, ...startOptions } = opts;
  const config = loadConfig({
    configFile,
    env: {
      KEYWARD_PORT: "0",
      KEYWARD_DATA_DIR: dataDir,
      KEYWARD_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      KEYWARD_MASTER_KEY: TEST_MASTER_KEY,
      KEYWARD_LOG_LEVEL: "silent",
      ...overrides,
    },
  });
  const running = await startKeyward(config, { logger: silentLogger(), ...startOptions });
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
  return { ...running, adminToken: TEST_ADMIN_TOKEN, dataDir, config, admin };
}
