import { describe, expect, it } from "vitest";
import { createBoundedCache } from "./index.js";

/** A promise the test settles by hand, so a load can be held open while something else happens. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("createBoundedCache", () => {
  it("holds at most max entries, evicting the least recently used one at a time", () => {
    const cache = createBoundedCache<string, number>({ max: 3 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1); // a is now the most recently used; b the least
    cache.set("d", 4);
    expect(cache.size).toBe(3);
    expect([...cache.keys()]).toEqual(["d", "a", "c"]);
    expect([...cache.values()]).toEqual([4, 1, 3]);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c"), cache.get("d")]).toEqual([1, 3, 4]);
  });

  it("never empties itself when full: filling past max keeps the newest max entries", () => {
    const cache = createBoundedCache<number, number>({ max: 100 });
    for (let i = 0; i < 1000; i++) cache.set(i, i);
    expect(cache.size).toBe(100);
    for (let i = 900; i < 1000; i++) expect(cache.get(i)).toBe(i);
    expect(cache.get(899)).toBeUndefined();
  });

  it("has() does not refresh recency", () => {
    const cache = createBoundedCache<string, number>({ max: 2 });
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.has("a")).toBe(true);
    cache.set("c", 3);
    expect(cache.has("a")).toBe(false);
    expect(cache.has("b")).toBe(true);
  });

  it("stores null as a value (negative lookups), distinct from a miss", () => {
    const cache = createBoundedCache<string, string | null>({ max: 2 });
    cache.set("gone", null);
    expect(cache.get("gone")).toBeNull();
    expect(cache.get("never")).toBeUndefined();
  });

  it("expires entries at exactly set time + ttl on the injected clock, default and per entry", () => {
    const clock = { t: 1_000 };
    const cache = createBoundedCache<string, string>({ max: 10, ttlMs: 500, now: () => clock.t });
    cache.set("default", "x");
    cache.set("short", "y", 100);
    clock.t = 1_099;
    expect(cache.get("short")).toBe("y");
    clock.t = 1_100;
    expect(cache.get("short")).toBeUndefined();
    expect(cache.get("default")).toBe("x");
    clock.t = 1_500;
    expect(cache.get("default")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("works with a clock that reads 0, and skips a write whose lifetime is already over", () => {
    const clock = { t: 0 };
    const cache = createBoundedCache<string, string>({ max: 10, now: () => clock.t });
    cache.set("a", "x", 10);
    cache.set("dead", "y", 0);
    expect(cache.get("dead")).toBeUndefined();
    clock.t = 10;
    expect(cache.get("a")).toBeUndefined();
  });

  it("tells onEvict about entries the bound pushes out, and only those", () => {
    const evicted: Array<[string, number]> = [];
    const cache = createBoundedCache<string, number>({ max: 2, onEvict: (k, v) => evicted.push([k, v]) });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("b", 3);
    cache.delete("b");
    cache.set("c", 4);
    cache.set("d", 5);
    cache.clear();
    expect(evicted).toEqual([["a", 1]]);
  });

  it("rejects a max that is not a positive integer", () => {
    expect(() => createBoundedCache({ max: 0 })).toThrow(RangeError);
    expect(() => createBoundedCache({ max: 1.5 })).toThrow(RangeError);
  });

  it("deleteWhere can drop most of a large cache in one pass", () => {
    const cache = createBoundedCache<number, number>({ max: 1000 });
    for (let i = 0; i < 1000; i++) cache.set(i, i);
    cache.deleteWhere((v) => v % 10 !== 0);
    expect(cache.size).toBe(100);
    expect([...cache.keys()].every((k) => k % 10 === 0)).toBe(true);
  });

  it("deleteWhere drops every matching entry and keeps the rest", () => {
    const cache = createBoundedCache<string, { owner: string }>({ max: 10 });
    cache.set("k1", { owner: "alice" });
    cache.set("k2", { owner: "bob" });
    cache.set("k3", { owner: "alice" });
    cache.deleteWhere((v) => v.owner === "alice");
    expect([cache.get("k1"), cache.get("k2"), cache.get("k3")]).toEqual([undefined, { owner: "bob" }, undefined]);
  });
});

describe("createBoundedCache load (single flight)", () => {
  it("shares one loader call between concurrent misses of a key, then serves the stored value", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const gate = deferred<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return gate.promise;
    };
    const all = Promise.all([cache.load("k", loader), cache.load("k", loader), cache.load("k", loader)]);
    gate.resolve("v");
    expect(await all).toEqual(["v", "v", "v"]);
    expect(calls).toBe(1);
    expect(cache.get("k")).toBe("v");
    expect(await cache.load("k", loader)).toBe("v");
    expect(calls).toBe(1);
  });

  it("loads different keys independently", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const seen: string[] = [];
    const values = await Promise.all(
      ["a", "b"].map((k) =>
        cache.load(k, async () => {
          seen.push(k);
          return k.toUpperCase();
        }),
      ),
    );
    expect(values).toEqual(["A", "B"]);
    expect(seen.sort()).toEqual(["a", "b"]);
  });

  it("passes a rejection to every waiter and does not cache it: the next load calls the loader again", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const gate = deferred<string>();
    let calls = 0;
    const failing = () => {
      calls++;
      return gate.promise;
    };
    const first = cache.load("k", failing);
    const second = cache.load("k", failing);
    gate.reject(new Error("store down"));
    await expect(first).rejects.toThrow("store down");
    await expect(second).rejects.toThrow("store down");
    expect(calls).toBe(1);
    expect(cache.has("k")).toBe(false);
    expect(await cache.load("k", async () => "recovered")).toBe("recovered");
  });

  it("a loader that throws synchronously rejects the load and leaves nothing behind", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    await expect(
      cache.load("k", () => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(await cache.load("k", async () => "ok")).toBe("ok");
  });

  it("a loader that loads its own key joins its own flight instead of starting a second one", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    let calls = 0;
    let inner: Promise<string> | undefined;
    const outer = cache.load("k", async () => {
      calls++;
      inner = cache.load("k", async () => "second");
      return "first";
    });
    expect(await outer).toBe("first");
    expect(await inner).toBe("first");
    expect(calls).toBe(1);
  });

  it("a delete during a load keeps the stale value out, and the next load calls the loader afresh", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const stale = deferred<string>();
    const pending = cache.load("k", () => stale.promise);
    cache.delete("k"); // e.g. a change-feed invalidation arriving while the store read is in flight
    const fresh = cache.load("k", async () => "fresh");
    stale.resolve("stale");
    expect(await pending).toBe("stale"); // the caller that asked before the change gets its answer
    expect(await fresh).toBe("fresh");
    expect(cache.get("k")).toBe("fresh");
  });

  it("a delete during a load with no later load leaves the key empty", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const stale = deferred<string>();
    const pending = cache.load("k", () => stale.promise);
    cache.delete("k");
    stale.resolve("stale");
    await pending;
    expect(cache.get("k")).toBeUndefined();
  });

  it("clear() and deleteWhere() void running loads; set() during a load wins over it", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    const a = deferred<string>();
    const b = deferred<string>();
    const c = deferred<string>();
    const loads = [
      cache.load("a", () => a.promise),
      cache.load("b", () => b.promise),
      cache.load("c", () => c.promise),
    ];
    cache.clear();
    cache.deleteWhere(() => false);
    cache.set("c", "newer");
    a.resolve("old-a");
    b.resolve("old-b");
    c.resolve("old-c");
    await Promise.all(loads);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([undefined, undefined, "newer"]);
  });

  it("voidLoads() keeps stored entries but keeps every running load's value out", async () => {
    const cache = createBoundedCache<string, string>({ max: 10 });
    cache.set("kept", "v");
    const gate = deferred<string>();
    const pending = cache.load("k", () => gate.promise);
    cache.voidLoads();
    gate.resolve("stale");
    expect(await pending).toBe("stale");
    expect(cache.get("k")).toBeUndefined();
    expect(cache.get("kept")).toBe("v");
  });

  it("stores a loaded value with the lifetime chosen for it", async () => {
    const clock = { t: 5_000 };
    const cache = createBoundedCache<string, { exp: number } | null>({ max: 10, ttlMs: 1_000, now: () => clock.t });
    await cache.load(
      "token",
      async () => ({ exp: 5_200 }),
      (v) => (v ? v.exp - clock.t : undefined),
    );
    await cache.load("missing", async () => null);
    clock.t = 5_200;
    expect(cache.get("token")).toBeUndefined();
    expect(cache.get("missing")).toBeNull();
    clock.t = 6_000;
    expect(cache.get("missing")).toBeUndefined();
  });
});
