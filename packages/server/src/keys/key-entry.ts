import type { BlockList } from "node:net";
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
  };
}

/**
 * Bounded map from key hash to entry (null = known not to exist). Invalidated by key id, which
 * is all an admin change knows.
 */
export class KeyCache {
  private readonly byHash = new Map<string, KeyEntry | null>();
  private readonly hashById = new Map<string, string>();
  /** Bumped by every invalidation, so a store read that raced with a change is not cached. */
  generation = 0;
  constructor(private readonly max = 200_000) {}

  get(hash: string): KeyEntry | null | undefined {
    return this.byHash.get(hash);
  }

  /** A cached key by id (tokens name their key by id); undefined when not cached. */
  getById(id: string): KeyEntry | undefined {
    const hash = this.hashById.get(id);
    return hash === undefined ? undefined : (this.byHash.get(hash) ?? undefined);
  }

  set(hash: string, entry: KeyEntry | null): void {
    if (this.byHash.size >= this.max) this.evictOldest();
    this.byHash.set(hash, entry);
    if (entry) this.hashById.set(entry.id, hash);
  }

  invalidate(id: string): void {
    this.generation++;
    const hash = this.hashById.get(id);
    if (hash === undefined) return;
    this.byHash.delete(hash);
    this.hashById.delete(id);
  }

  forgetHash(hash: string): void {
    const entry = this.byHash.get(hash);
    if (entry) this.hashById.delete(entry.id);
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

  /** Maps iterate in insertion order: drop the oldest tenth in one go. */
  private evictOldest(): void {
    let n = Math.ceil(this.max / 10);
    for (const [hash, entry] of this.byHash) {
      if (n-- <= 0) break;
      this.byHash.delete(hash);
      if (entry) this.hashById.delete(entry.id);
    }
  }
}
