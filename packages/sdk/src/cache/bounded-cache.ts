import { LRUCache } from "lru-cache";

/** Options of {@link createBoundedCache}. */
export interface BoundedCacheOptions<K = unknown, V = unknown> {
  /**
   * Most entries held; when full, setting a new key evicts the least recently used one. lru-cache
   * sizes its index arrays to `max` up front (about 27 bytes a slot), so do not pass an
   * "unlimited" huge number.
   */
  max: number;
  /** Default lifetime of an entry in milliseconds; none means an entry lives until evicted. */
  ttlMs?: number;
  /** Clock in milliseconds (default `Date.now`); tests pass a frozen one. */
  now?: () => number;
  /** Called when the bound pushes an entry out (not on delete, clear or overwrite): keeps side indexes in step. */
  onEvict?: (key: K, value: V) => void;
}

/** Lifetime of a loaded value: a fixed number of milliseconds, or one chosen per value. */
export type LoadTtl<V> = number | ((value: V) => number | undefined);

/** A bounded least-recently-used cache with single-flight loading. */
export interface BoundedCache<K, V> {
  /** The live value for `key`, marking it recently used; synchronous, so a hit never awaits. */
  get(key: K): V | undefined;
  /** Whether `key` holds a live value, without marking it used. */
  has(key: K): boolean;
  /** Stores a value (its own `ttlMs` or the cache's default); wins over a load already running. */
  set(key: K, value: V, ttlMs?: number): void;
  /** Drops `key`; a load of it already running will not store its (now stale) value. */
  delete(key: K): void;
  /** Drops every entry for which `matches` is true (used where one change voids several keys). */
  deleteWhere(matches: (value: V, key: K) => boolean): void;
  /** Drops everything, and voids every load already running. */
  clear(): void;
  /**
   * Keeps the entries but voids every load already running: for a change the cache cannot name by
   * key (a key revoked by id while a lookup by its secret's hash is in flight).
   */
  voidLoads(): void;
  /** Keys held, most recently used first (expired ones not yet dropped included). */
  keys(): IterableIterator<K>;
  /** Values held, in the order of `keys()`. */
  values(): IterableIterator<V>;
  /** Entries held, including expired ones not yet dropped. */
  readonly size: number;
  /**
   * The cached value for `key`, or the result of `loader()`, stored for next time. Concurrent
   * calls for one key share one `loader()` call; a rejection is passed to them all and not stored.
   */
  load(key: K, loader: () => Promise<V>, ttlMs?: LoadTtl<V>): Promise<V>;
}

interface Entry<V> {
  value: V;
  /** Absolute expiry on the cache's clock; `Infinity` when the entry has no lifetime. */
  expiresAt: number;
}

interface Flight<V> {
  promise: Promise<V>;
}

/**
 * Creates the one bounded cache every cache in Keyward uses: `lru-cache` keeps the bound and the
 * recency order (evicting one entry at a time, never clearing itself when full, so a full cache
 * causes no refill storm), and this wrapper adds expiry, `null` values and single-flight loads.
 *
 * Expiry is checked here rather than with lru-cache's `ttl` so that an entry is dead from the
 * instant `now() >= expiresAt` (lru-cache keeps it one millisecond longer, and treats a clock
 * reading of 0 as "no expiry"), which is what token lifetimes need with a frozen test clock.
 *
 * @example
 * ```ts
 * import { createBoundedCache } from "@keyward/sdk/cache";
 *
 * const users = createBoundedCache<string, User | null>({ max: 10_000, ttlMs: 60_000 });
 * const hit = users.get(id); // synchronous: undefined on a miss, null for "known absent"
 * const user = hit !== undefined ? hit : await users.load(id, () => store.findUser(id));
 * users.delete(id); // on a change-feed event: a lookup already running won't put it back
 * ```
 */
export function createBoundedCache<K extends {}, V>(options: BoundedCacheOptions<K, V>): BoundedCache<K, V> {
  const { max, ttlMs: defaultTtl, now = Date.now, onEvict } = options;
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError("bounded cache: max must be a positive integer");
  const entries = new LRUCache<K, Entry<V>>(
    onEvict ? { max, dispose: (entry, key, reason) => reason === "evict" && onEvict(key, entry.value) } : { max },
  );
  const flights = new Map<K, Flight<V>>();

  function expiry(ttl: number | undefined): number {
    return ttl === undefined ? Number.POSITIVE_INFINITY : now() + ttl;
  }

  function live(key: K, touch: boolean): Entry<V> | undefined {
    const entry = touch ? entries.get(key) : entries.peek(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== Number.POSITIVE_INFINITY && now() >= entry.expiresAt) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  function store(key: K, value: V, ttl: number | undefined): void {
    // A lifetime of zero or less would store an entry that is already dead: skip the write.
    if (ttl !== undefined && ttl <= 0) entries.delete(key);
    else entries.set(key, { value, expiresAt: expiry(ttl) });
  }

  return {
    get(key) {
      return live(key, true)?.value;
    },
    has(key) {
      return live(key, false) !== undefined;
    },
    set(key, value, ttlMs = defaultTtl) {
      flights.delete(key);
      store(key, value, ttlMs);
    },
    delete(key) {
      flights.delete(key);
      entries.delete(key);
    },
    deleteWhere(matches) {
      // Collected first: deleting from lru-cache while iterating it is not safe.
      const doomed: K[] = [];
      for (const [key, entry] of entries.entries()) if (matches(entry.value, key)) doomed.push(key);
      for (const key of doomed) entries.delete(key);
      // A running load may be about to store a value the predicate would have dropped.
      flights.clear();
    },
    clear() {
      flights.clear();
      entries.clear();
    },
    keys() {
      return entries.keys();
    },
    *values() {
      for (const entry of entries.values()) yield entry.value;
    },
    voidLoads() {
      flights.clear();
    },
    get size() {
      return entries.size;
    },
    load(key, loader, ttlMs = defaultTtl) {
      const hit = live(key, true);
      if (hit !== undefined) return Promise.resolve(hit.value);
      const running = flights.get(key);
      if (running !== undefined) return running.promise;
      // The flight is registered before the loader is called (synchronously, so a caller sees its
      // read start at once): a loader that calls load() for its own key joins it.
      let settle!: { resolve: (value: V) => void; reject: (err: unknown) => void };
      const flight: Flight<V> = { promise: new Promise<V>((resolve, reject) => (settle = { resolve, reject })) };
      flights.set(key, flight);
      void (async () => {
        try {
          const value = await loader();
          // Stored only if no delete(), set() or clear() happened while the loader ran.
          if (flights.get(key) === flight) {
            flights.delete(key);
            store(key, value, typeof ttlMs === "function" ? ttlMs(value) : ttlMs);
          }
          settle.resolve(value);
        } catch (err) {
          if (flights.get(key) === flight) flights.delete(key);
          settle.reject(err);
        }
      })();
      return flight.promise;
    },
  };
}
