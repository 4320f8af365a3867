import { describe, expect, it } from "vitest";
import { KeyCache, type KeyEntry, toEntry } from "./key-entry.js";
import type { KeyRow } from "./keys-store.js";

/** The key cache behind every key verification: bound, single-flight reads, and invalidation races. */
function row(n: number, status: KeyRow["status"] = "active"): KeyRow {
  return {
    id: `key_${n}`,
    hash: `h1:hash${n}`,
    prefix: `kwk_${n}`,
    owner: "acme",
    name: null,
    scopes: '["read"]',
    status,
    expires_at: null,
    rate_limit: null,
    quota: null,
    ip_allow: null,
    rotated_to: null,
    lineage: `key_${n}`,
    created_at: 0,
    updated_at: 0,
    revoked_at: null,
    last_used_at: null,
    canary: 0,
  };
}

/** A store whose reads the test releases by hand, counting them. */
function slowStore() {
  const reads: Array<{ hash: string; release: (r: KeyRow | null) => void }> = [];
  const read = (hash: string) => () =>
    new Promise<KeyEntry | null>((resolve) => {
      reads.push({ hash, release: (r) => resolve(r ? toEntry(r) : null) });
    });
  return { reads, read };
}

describe("KeyCache", () => {
  it("when full, evicts the least recently used key only: hot keys stay cached (no refill storm)", () => {
    const cache = new KeyCache(100);
    for (let i = 0; i < 100; i++) cache.set(row(i).hash, toEntry(row(i)));
    cache.get(row(0).hash); // key 0 is hot
    for (let i = 100; i < 150; i++) cache.set(row(i).hash, toEntry(row(i)));
    expect(cache.size).toBe(100);
    expect(cache.get(row(0).hash)?.id).toBe("key_0");
    expect(cache.get(row(1).hash)).toBeUndefined();
    expect(cache.get(row(50).hash)).toBeUndefined();
    expect(cache.get(row(51).hash)?.id).toBe("key_51");
    expect(cache.getById("key_149")?.id).toBe("key_149");
    expect(cache.getById("key_1")).toBeUndefined();
  });

  it("concurrent misses of one key make one store read, and later lookups none", async () => {
    const cache = new KeyCache(10);
    const store = slowStore();
    const hash = row(1).hash;
    const waits = [
      cache.load(hash, store.read(hash)),
      cache.load(hash, store.read(hash)),
      cache.load(hash, store.read(hash)),
    ];
    expect(store.reads).toHaveLength(1);
    store.reads[0]?.release(row(1));
    const entries = await Promise.all(waits);
    expect(entries.map((e) => e?.id)).toEqual(["key_1", "key_1", "key_1"]);
    expect(cache.get(hash)?.id).toBe("key_1");
    await cache.load(hash, store.read(hash));
    expect(store.reads).toHaveLength(1);
  });

  it("remembers unknown keys too, so garbage secrets do not reach the store twice", async () => {
    const cache = new KeyCache(10);
    const store = slowStore();
    const pending = cache.load("h1:nothing", store.read("h1:nothing"));
    store.reads[0]?.release(null);
    expect(await pending).toBeNull();
    expect(cache.get("h1:nothing")).toBeNull();
  });

  it("a revocation by id while a lookup by secret is in flight keeps the stale active key out", async () => {
    const cache = new KeyCache(10);
    const store = slowStore();
    const hash = row(1).hash;
    const pending = cache.load(hash, store.read(hash));
    cache.invalidate("key_1"); // the admin revoked it; the read below was taken before
    store.reads[0]?.release(row(1, "active"));
    expect((await pending)?.status).toBe("active");
    expect(cache.get(hash)).toBeUndefined();
    expect(cache.getById("key_1")).toBeUndefined();
    const fresh = cache.load(hash, store.read(hash));
    store.reads[1]?.release(row(1, "revoked"));
    expect((await fresh)?.status).toBe("revoked");
    expect(cache.get(hash)?.status).toBe("revoked");
  });

  it("an invalidation finds a hot key even after many evictions of others", () => {
    const cache = new KeyCache(3);
    cache.set(row(0).hash, toEntry(row(0)));
    for (let i = 1; i < 20; i++) {
      cache.get(row(0).hash);
      cache.set(row(i).hash, toEntry(row(i)));
    }
    expect(cache.getById("key_0")?.id).toBe("key_0");
    cache.invalidate("key_0");
    expect(cache.get(row(0).hash)).toBeUndefined();
  });

  it("a read by id overtaken by an invalidation is returned but not cached", async () => {
    const cache = new KeyCache(10);
    let release!: () => void;
    const pending = cache.loadById(
      () =>
        new Promise((resolve) => {
          release = () => resolve({ hash: row(1).hash, entry: toEntry(row(1)) });
        }),
    );
    cache.invalidate("key_1");
    release();
    expect((await pending)?.id).toBe("key_1");
    expect(cache.getById("key_1")).toBeUndefined();
  });
});
