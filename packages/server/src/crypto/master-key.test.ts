import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadMasterKey } from "./master-key.js";

// Lets a test act as a second process that publishes its key file just before we do.
const hooks = vi.hoisted(() => ({ beforeLink: undefined as undefined | ((target: string) => void) }));
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  return {
    ...real,
    linkSync: (existing: fs.PathLike, target: fs.PathLike) => {
      hooks.beforeLink?.(String(target));
      real.linkSync(existing, target);
    },
  };
});

let dir: string;
let warnings: string[];
const warn = (msg: string) => warnings.push(msg);

beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), "kw-master-key-"));
  warnings = [];
  hooks.beforeLink = undefined;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const modeOf = (path: string) => fs.statSync(path).mode & 0o777;

describe("loadMasterKey from KEYWARD_MASTER_KEY", () => {
  it("decodes base64 of 32 bytes and leaves the data dir alone", () => {
    const key = randomBytes(32);
    const loaded = loadMasterKey({ fromEnv: `${key.toString("base64")}\n`, dataDir: dir, requireExplicit: true, warn });
    expect(loaded.equals(key)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it.each([
    ["too short", randomBytes(16).toString("base64"), /exactly 32 bytes, but decodes to 16 bytes/],
    ["too long", randomBytes(33).toString("base64"), /exactly 32 bytes, but decodes to 33 bytes/],
    ["not base64", "this-is-not-base64!!not-at-all~~~~~~~~~~~~~~~", /not valid base64/],
    ["hex instead of base64", randomBytes(32).toString("hex"), /exactly 32 bytes/],
    ["empty", "  ", /empty/],
  ])("rejects a value that is %s, naming the setting but not the value", (_why, value, reason) => {
    let message = "";
    try {
      loadMasterKey({ fromEnv: value, dataDir: dir, requireExplicit: false, warn });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^KEYWARD_MASTER_KEY /);
    expect(message).toMatch(reason);
    if (value.trim()) expect(message).not.toContain(value.trim());
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe("loadMasterKey without KEYWARD_MASTER_KEY", () => {
  it("is required with PostgreSQL, and no file is generated", () => {
    expect(() => loadMasterKey({ fromEnv: undefined, dataDir: dir, requireExplicit: true, warn })).toThrow(
      /^KEYWARD_MASTER_KEY is required with PostgreSQL/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("generates master.key with mode 0600 once, warns once, and reuses it", () => {
    const dataDir = join(dir, "nested", ".keyward");
    const first = loadMasterKey({ fromEnv: undefined, dataDir, requireExplicit: false, warn });
    expect(first.length).toBe(32);
    const path = join(dataDir, "master.key");
    expect(modeOf(path)).toBe(0o600);
    expect(fs.readFileSync(path, "utf8").trim()).toBe(first.toString("base64"));
    expect(fs.readdirSync(dataDir)).toEqual(["master.key"]); // no temp file left behind
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(path);
    expect(warnings[0]).toMatch(/back it up/);
    expect(warnings[0]).toContain("KEYWARD_MASTER_KEY");
    expect(warnings[0]).not.toContain(first.toString("base64"));

    const second = loadMasterKey({ fromEnv: undefined, dataDir, requireExplicit: false, warn });
    expect(second.equals(first)).toBe(true);
    expect(warnings).toHaveLength(1);
  });

  it("warns when the key file is readable by group or others", () => {
    const path = join(dir, "master.key");
    const key = randomBytes(32);
    fs.writeFileSync(path, key.toString("base64"), { mode: 0o644 });
    fs.chmodSync(path, 0o644);
    expect(loadMasterKey({ fromEnv: undefined, dataDir: dir, requireExplicit: false, warn }).equals(key)).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/readable by other users \(mode 644\).*chmod 600/);
  });

  it("refuses a damaged key file without echoing or replacing it", () => {
    const path = join(dir, "master.key");
    const content = randomBytes(20).toString("base64");
    fs.writeFileSync(path, content, { mode: 0o600 });
    expect(() => loadMasterKey({ fromEnv: undefined, dataDir: dir, requireExplicit: false, warn })).toThrow(
      new RegExp(`^master key file ${path} must be base64 of exactly 32 bytes`),
    );
    try {
      loadMasterKey({ fromEnv: undefined, dataDir: dir, requireExplicit: false, warn });
    } catch (err) {
      expect((err as Error).message).not.toContain(content);
    }
    expect(fs.readFileSync(path, "utf8")).toBe(content);
  });

  it("uses the other process's key when it publishes first, and cleans up", () => {
    const theirs = randomBytes(32);
    hooks.beforeLink = (target) => {
      fs.writeFileSync(target, `${theirs.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    };
    const loaded = loadMasterKey({ fromEnv: undefined, dataDir: dir, requireExplicit: false, warn });
    expect(loaded.equals(theirs)).toBe(true);
    expect(warnings).toEqual([]); // the winner warns, not us
    expect(fs.readdirSync(dir)).toEqual(["master.key"]);
  });
});
