import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from "../audit/audit-sink.js";
import { ConfigError, loadConfig } from "../config.js";
import { DEFAULT_STORE_OPTIONS } from "./db.js";
import { storeOptions } from "./open-store.js";

// The config file's `database:` section: documented defaults (docs/operations.md, "Database
// timeouts"), each setting bounded, and what reaches the store.
describe("database settings", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const withFile = (text: string) => {
    dir = mkdtempSync(join(tmpdir(), "keyward-dbcfg-"));
    const file = join(dir, "keyward.yaml");
    writeFileSync(file, text);
    return loadConfig({ configFile: file, env: {} });
  };

  it("defaults to the store's defaults, and bounds every call", () => {
    const cfg = loadConfig({ env: {} });
    expect(cfg.database).toEqual({
      pool_size: 10,
      connect_timeout_ms: 5000,
      statement_timeout_ms: 10_000,
      lock_timeout_ms: 3000,
      idle_in_transaction_timeout_ms: 15_000,
      transaction_timeout_ms: 30_000,
      audit_write_timeout_ms: DEFAULT_AUDIT_WRITE_TIMEOUT_MS,
      busy_timeout_ms: 5000,
    });
    expect(storeOptions(cfg.database)).toEqual({ ...DEFAULT_STORE_OPTIONS, queryTimeoutMs: undefined });
  });

  it("reads the database section of the config file", () => {
    const cfg = withFile(
      "database:\n  pool_size: 25\n  lock_timeout_ms: 800\n  query_timeout_ms: 4000\n  audit_write_timeout_ms: 2000\n",
    );
    expect(cfg.database).toMatchObject({ pool_size: 25, lock_timeout_ms: 800, audit_write_timeout_ms: 2000 });
    expect(storeOptions(cfg.database)).toMatchObject({ poolSize: 25, lockTimeoutMs: 800, queryTimeoutMs: 4000 });
  });

  it.each([
    ["database:\n  statement_timeout_ms: 0\n", "database"],
    ["database:\n  pool_size: 0\n", "database"],
    ["database:\n  lock_timeout: 100\n", "database"],
  ])("refuses %j, naming the section", (text, name) => {
    expect(() => withFile(text)).toThrow(ConfigError);
    expect(() => withFile(text)).toThrow(new RegExp(`${name} in `));
  });
});
