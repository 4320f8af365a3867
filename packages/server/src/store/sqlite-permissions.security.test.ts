import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServerAt } from "../../test-support/server-at.js";

// The SQLite database holds key hashes, sealed secrets and the audit log: owner-only, whatever
// the umask (the usual 022 would give 0644).
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
const FILES = ["keyward.db", "keyward.db-wal", "keyward.db-shm"];

let parent: string | undefined;
afterEach(() => {
  if (parent) rmSync(parent, { recursive: true, force: true });
  parent = undefined;
});

describe("SQLite files are private to Keyward's user", () => {
  it("creates the data dir 0700 and the database, -wal and -shm files 0600 on a fresh start", async () => {
    parent = mkdtempSync(join(tmpdir(), "keyward-perm-"));
    const dataDir = join(parent, "data");
    const kw = await startTestServerAt(dataDir);
    try {
      expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
      expect(mode(dataDir)).toBe("700");
      for (const f of FILES) {
        expect(existsSync(join(dataDir, f)), f).toBe(true);
        expect(mode(join(dataDir, f)), f).toBe("600");
      }
    } finally {
      await kw.close();
    }
  });

  it("narrows files an older version left world-readable, on the next start", async () => {
    parent = mkdtempSync(join(tmpdir(), "keyward-perm-"));
    const dataDir = join(parent, "data");
    const first = await startTestServerAt(dataDir);
    expect((await first.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
    // Widen them while the first server still holds -wal and -shm, as an older version left them.
    for (const f of FILES) chmodSync(join(dataDir, f), 0o644);
    await first.close();
    const present = FILES.filter((f) => existsSync(join(dataDir, f)));
    expect(present).toContain("keyward.db");

    const kw = await startTestServerAt(dataDir);
    try {
      expect((await kw.admin("GET", "/consumers/acme")).status).toBe(200);
      for (const f of FILES) {
        if (existsSync(join(dataDir, f))) expect(mode(join(dataDir, f)), f).toBe("600");
      }
    } finally {
      await kw.close();
    }
  });
});
