import type { BlockList } from "node:net";
import { type BoundedCache, createBoundedCache } from "@keyward/sdk/cache";
import { parseCidrList } from "../http/client-ip.js";
import type { KeyRow } from "./keys-store.js";

export interface RateLimitPolicy {
  limit: number;
  window_s: number;
}
export interface QuotaPolicy {
  limit: number;
  period: "day" | "month" | "total";
}

/**
 * A key as the hot path needs it: parsed once on a cache miss, then read from memory only.
 * It carries no secret (the hash is the cache key, not a field).
 */
export interface KeyEntry {
  id: string;
  prefix: string;
  owner: string;
  scopes: readonly string[];
  scopeSet: ReadonlySet<string>;
  status: KeyRow["status"];
  expiresAt: number | null;
  rateLimit: RateLimitPolicy | null;
  quota: QuotaPolicy | null;
  ipAllow: BlockList | null;
  /** Allowlist answers by address, filled on use (bounded). */
  ipSeen: Map<string, boolean>;
  /** Set once the key was rotated: it is retired, and usable only until its grace ends. */
  rotatedTo: string | null;
  /** The first key of a rotation chain: limits and quotas count per lineage, so rotating resets nothing. */
  lineage: string;
  /** A tripwire key (SPEC §10): refused exactly as an unknown key, and its use alerted. */
  canary: boolean;
}

export function toEntry(row: KeyRow): KeyEntry {
  const scopes = JSON.parse(row.scopes) as string[];
  return {
    id: row.id,
    prefix: row.prefix,
    owner: row.owner,
    scopes,
    scopeSet: new Set(scopes),
    status: row.status,
    expiresAt: row.expires_at,
    rateLimit: row.rate_limit ? (JSON.parse(row.rate_limit) as RateLimitPolicy) : null,
    quota: row.quota ? (JSON.parse(row.quota) as QuotaPolicy) : null,
    ipAllow: row.ip_allow ? parseCidrList(JSON.parse(row.ip_allow) as string[]) : null,
    ipSeen: new Map(),
    rotatedTo: row.rotated_to,
    lineage: row.lineage,
    canary: Number(row.canary) === 1,
  };
}

/**
 * Keys by secret hash (null = known not to exist), bounded LRU (`@keyward/sdk/cache`): a full cache
 * evicts its least recently used key, so a flood of new keys cannot empty it and send every hot
 * key to the store at once. Invalidated by key id, which is all an admin change knows; `hashById`
 * holds exactly the ids of the non-null entries (eviction keeps it in step), so an invalidation
 * always finds its key.
 */
export class KeyCache {
  private readonly hashById = new Map<string, string>();
  private readonly byHash: BoundedCache<string, KeyEntry | null>;
  /** Bumped by every invalidation, so a read by id that raced with a change is not cached. */
  private generation = 0;

  constructor(max = 200_000) {
    this.byHash = createBoundedCache({ max, onEvict: (_hash, entry) => this.unindex(entry) });
  }

  get(hash: string): KeyEntry | null | undefined {
    return this.byHash.get(hash);
  }

  /** A cached key by id (tokens name their key by id); undefined when not cached. */
  getById(id: string): KeyEntry | undefined {
    const hash = this.hashById.get(id);
    return hash === undefined ? undefined : (this.byHash.get(hash) ?? undefined);
  }

  /**
   * The entry for `hash`, read with `read` on a miss; concurrent misses of one hash share one read,
   * and a read that an invalidation overtook is not cached (its caller still gets the answer).
   */
  load(hash: string, read: () => Promise<KeyEntry | null>): Promise<KeyEntry | null> {
    const loaded = this.byHash.load(hash, async () => {
      const entry = await read();
      // Indexed before the cache stores it, so an invalidation arriving at any point finds it.
      if (entry) this.hashById.set(entry.id, hash);
      return entry;
    });
    return loaded.then((entry) => {
      // The read was overtaken and not stored: drop its index entry too.
      if (entry && !this.byHash.has(hash) && this.hashById.get(entry.id) === hash) this.hashById.delete(entry.id);
      return entry;
    });
  }

  /** One read by id (nothing to share it with: ids are looked up off the hot path), cached unless overtaken. */
  async loadById(read: () => Promise<{ hash: string; entry: KeyEntry } | null>): Promise<KeyEntry | null> {
    const generation = this.generation;
    const found = await read();
    if (!found) return null;
    if (this.generation === generation) this.set(found.hash, found.entry);
    return found.entry;
  }

  set(hash: string, entry: KeyEntry | null): void {
    this.byHash.set(hash, entry);
    if (entry) this.hashById.set(entry.id, hash);
  }

  invalidate(id: string): void {
    this.generation++;
    // A lookup by secret in flight cannot be named by id (its row is not back yet): void them all.
    this.byHash.voidLoads();
    const hash = this.hashById.get(id);
    if (hash === undefined) return;
    this.byHash.delete(hash);
    this.hashById.delete(id);
  }

  forgetHash(hash: string): void {
    const entry = this.byHash.get(hash);
    if (entry) this.unindex(entry);
    this.byHash.delete(hash);
  }

  clear(): void {
    this.generation++;
    this.byHash.clear();
    this.hashById.clear();
  }

  get size(): number {
    return this.byHash.size;
  }

  private unindex(entry: KeyEntry | null): void {
    if (entry && this.hashById.get(entry.id) !== undefined) this.hashById.delete(entry.id);
  }
}
