// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${credentials.<name>}` placeholders are tested here
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeKeyward } from "../../test-support/client/fake-keyward.js";
import { KeywardError } from "../errors.js";
import { Keyward } from "./keyward.js";
import type { ConnectOptions } from "./options.js";

const SECRET = "sk-live-0123456789abcdef";
const KEY = Buffer.alloc(32, 1);
let fake: FakeKeyward;
let dir: string;
let file: string;

async function connectOnce(extra: Partial<ConnectOptions> = {}): Promise<Keyward> {
  return Keyward.connect({ url: fake.url, token: fake.token, cacheFile: file, cacheKey: KEY, ...extra });
}

/** Writes the cache with the server up, then takes the server down. */
async function primeCacheThenStop(): Promise<void> {
  await (await connectOnce()).close();
  await fake.stop();
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "keyward-cache-"));
  file = join(dir, "credentials.cache");
  fake = await new FakeKeyward().start();
  fake.set("openai", SECRET);
});

afterEach(async () => {
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("disk cache", () => {
  it("is written with mode 0600, encrypted (the value is not in the file), and no temp file is left", async () => {
    await primeCacheThenStop();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(file);
    expect(bytes.includes(Buffer.from(SECRET))).toBe(false);
    expect(bytes.includes(Buffer.from(Buffer.from(SECRET).toString("base64")))).toBe(false);
    expect(await readdir(dir)).toEqual(["credentials.cache"]);
  });

  it("is unusable with another key: connect fails with cache_unreadable, never a value", async () => {
    await primeCacheThenStop();
    const err = await connectOnce({ cacheKey: Buffer.alloc(32, 2) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ code: "cache_unreadable" });
    expect((err as Error).message).not.toContain(SECRET);
  });

  it("is bound to the server URL: a cache written for one Keyward is not loaded for another", async () => {
    await primeCacheThenStop();
    const other = `http://localhost:${new URL(fake.url).port}`;
    const err = await connectOnce({ url: other }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "cache_unreadable" });
  });

  it("a flipped bit anywhere fails the whole file", async () => {
    await primeCacheThenStop();
    const good = readFileSync(file);
    for (const at of [5, 20, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at]! ^= 1;
      writeFileSync(file, bad);
      const err = await connectOnce().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "cache_unreadable" });
    }
    writeFileSync(file, good.subarray(0, 10));
    expect(await connectOnce().catch((e: unknown) => e)).toMatchObject({ code: "cache_unreadable" });
  });

  it("never stands in for a refused key: a 401 at connect fails even with a good cache", async () => {
    await (await connectOnce()).close();
    const err = await connectOnce({ token: "kwk_revoked" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "invalid_key", status: 401 });
  });

  it("is not used while the server answers: a rotation made meanwhile wins", async () => {
    await (await connectOnce()).close();
    fake.set("openai", "sk-rotated");
    const kw = await connectOnce();
    expect(kw.get("openai")).toBe("sk-rotated");
    await kw.close();
  });

  // Issue 18: the cache was built in a plain object, where `credentials["__proto__"] = …` sets the
  // prototype instead of a property, so that credential silently vanished from the file.
  it("keeps credentials named __proto__, constructor and prototype, served by get and resolve", async () => {
    const names = ["__proto__", "constructor", "prototype", "hasOwnProperty"];
    for (const name of names) fake.set(name, `value-of-${name}`);
    const live = await connectOnce(); // the in-memory store, straight from the server
    for (const name of names) expect(live.get(name)).toBe(`value-of-${name}`);
    await live.close(); // waits for the cache write
    await fake.stop();
    const kw = await connectOnce();
    try {
      for (const name of names) expect(kw.get(name)).toBe(`value-of-${name}`);
      expect(kw.get("openai")).toBe(SECRET);
      const resolved = kw.resolve({ a: "${credentials.__proto__}", b: ["${credentials.constructor}"] });
      expect(resolved).toEqual({ a: "value-of-__proto__", b: ["value-of-constructor"] });
      expect(kw.resolve({ ["__proto__"]: "${credentials.prototype}" })).toHaveProperty(
        ["__proto__"],
        "value-of-prototype",
      );
      expect(({} as Record<string, unknown>).value).toBeUndefined(); // no prototype was polluted
    } finally {
      await kw.close();
    }
  });
});
