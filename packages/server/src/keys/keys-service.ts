import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { type ChangeFeed, createLocalChangeFeed } from "../cluster/change-feed.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { upgradeLegacySecret } from "../crypto/legacy-hashes.js";
import { generateSecret, hashSecret, isWellFormed, newId, secretPrefix } from "../crypto/secret-format.js";
import { invalidRequest, KeywardError, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter, WebhookEventType } from "../webhooks/webhook-events.js";
import { KeyCache, type KeyEntry, type QuotaPolicy, type RateLimitPolicy, toEntry } from "./key-entry.js";
import { decideKeyAction, type KeyAction } from "./key-state.js";
import type { KeyChanges, KeyRow, KeysStore } from "./keys-store.js";

export interface KeyInput {
  owner: string;
  name?: string | undefined;
  scopes: string[];
  expires_at?: number | null | undefined;
  rate_limit?: RateLimitPolicy | null | undefined;
  quota?: QuotaPolicy | null | undefined;
  ip_allow?: string[] | null | undefined;
  /** A canary key (SPEC §10): never usable, any use raises a critical alert. */
  canary?: boolean | undefined;
}

export interface KeyPatch {
  name?: string | null | undefined;
  scopes?: string[] | undefined;
  expires_at?: number | null | undefined;
  rate_limit?: RateLimitPolicy | null | undefined;
  quota?: QuotaPolicy | null | undefined;
  ip_allow?: string[] | null | undefined;
}

/** Something that must hear about every key change before the admin call returns. */
export type KeyChangeListener = (keyId: string, action: string) => void;

export function createKeysService(deps: {
  db: Db;
  store: KeysStore;
  clock: Clock;
  audit: AuditSink;
  /** Keys the stored hashes (crypto/secret-format.ts `hashSecret`). */
  integrity: IntegrityKeys;
  ownerExists: (owner: string) => Promise<boolean>;
  onLookup?: (cacheHit: boolean) => void;
  /** Where key changes are announced to every replica (this one included). */
  feed?: ChangeFeed;
  /** key.revoked / key.frozen / key.rotated, enqueued in the change's own transaction (SPEC §10). */
  events?: Pick<TransactionalEmitter, "emitIn">;
}) {
  const { db, store, clock, audit } = deps;
  const change = changeRunner(db, audit, deps.feed ?? createLocalChangeFeed());
  const cache = new KeyCache();
  const listeners: KeyChangeListener[] = [];

  function changed(id: string, action: string): void {
    cache.invalidate(id);
    for (const l of listeners) l(id, action);
  }

  const keyEvent = (actor: Actor, action: string, key: KeyRow, details?: Record<string, unknown>) =>
    changeEvent(actor, action, key.id, { owner: key.owner, prefix: key.prefix, ...details });

  /** Refuses an action the key's state does not allow (key-state.ts), as 409 conflict. */
  function allow(row: KeyRow, action: KeyAction): void {
    const t = decideKeyAction(row, action, clock.now());
    if (!t.ok) throw new KeywardError(t.code, t.message);
  }

  async function mutate(
    actor: Actor,
    id: string,
    action: string,
    decide: (row: KeyRow) => KeyChanges,
    details?: Record<string, unknown>,
  ): Promise<KeyRow> {
    const row = await change(actor, async (tx) => {
      const current = await store.getForUpdate(tx, id);
      if (!current) throw notFound(`key ${id}`);
      // decide() runs before any write of this transaction: a refusal it throws leaves no trace.
      const updated = await store.update(tx, id, decide(current), clock.now());
      if (!updated) throw notFound(`key ${id}`);
      const announced = ANNOUNCED[action];
      if (announced && deps.events && updated.status !== current.status) {
        await deps.events.emitIn(tx, announced, keyEventData(updated, actor, details));
      }
      return { result: updated, event: keyEvent(actor, action, updated, details), changes: [{ kind: "key", ref: id }] };
    });
    changed(id, action);
    return row;
  }

  function fresh(input: KeyInput, lineage?: string): { row: KeyRow; secret: string } {
    const secret = generateSecret("kwk");
    const id = newId("key");
    const now = clock.now();
    return {
      secret,
      row: {
        id,
        hash: hashSecret(secret, deps.integrity),
        prefix: secretPrefix(secret),
        owner: input.owner,
        name: input.name ?? null,
        scopes: JSON.stringify(input.scopes),
        status: "active",
        expires_at: input.expires_at ?? null,
        rate_limit: input.rate_limit ? JSON.stringify(input.rate_limit) : null,
        quota: input.quota ? JSON.stringify(input.quota) : null,
        ip_allow: input.ip_allow ? JSON.stringify(input.ip_allow) : null,
        rotated_to: null,
        lineage: lineage ?? id,
        created_at: now,
        updated_at: now,
        revoked_at: null,
        last_used_at: null,
        canary: input.canary ? 1 : 0,
      },
    };
  }

  function rejectPast(expiresAt: number | null | undefined): void {
    if (expiresAt != null && expiresAt <= clock.now()) throw invalidRequest("expires_at: must be in the future");
  }

  return {
    onChange(listener: KeyChangeListener): void {
      listeners.push(listener);
    },

    async create(actor: Actor, input: KeyInput): Promise<{ row: KeyRow; secret: string }> {
      if (!(await deps.ownerExists(input.owner))) throw invalidRequest(`owner: ${input.owner} does not exist`);
      rejectPast(input.expires_at);
      const created = fresh(input);
      await change(actor, async (tx) => {
        await store.insert(tx, created.row);
        // No replica can have cached a key whose id and secret are new: nothing to announce.
        return { result: undefined, event: keyEvent(actor, "key.create", created.row, { scopes: input.scopes }) };
      });
      cache.forgetHash(created.row.hash);
      changed(created.row.id, "key.create");
      return created;
    },

    async get(id: string): Promise<KeyRow> {
      const row = await store.get(id);
      if (!row) throw notFound(`key ${id}`);
      return row;
    },

    list: (owner: string | undefined, after: string | undefined, limit: number) => store.list(owner, after, limit),

    async patch(actor: Actor, id: string, patch: KeyPatch): Promise<KeyRow> {
      rejectPast(patch.expires_at);
      const changes: KeyChanges = {};
      if (patch.name !== undefined) changes.name = patch.name;
      if (patch.scopes !== undefined) changes.scopes = JSON.stringify(patch.scopes);
      if (patch.expires_at !== undefined) changes.expires_at = patch.expires_at;
      if (patch.rate_limit !== undefined) changes.rate_limit = patch.rate_limit && JSON.stringify(patch.rate_limit);
      if (patch.quota !== undefined) changes.quota = patch.quota && JSON.stringify(patch.quota);
      if (patch.ip_allow !== undefined) changes.ip_allow = patch.ip_allow && JSON.stringify(patch.ip_allow);
      return mutate(
        actor,
        id,
        "key.update",
        (row) => {
          allow(row, { kind: "patch", changes });
          return changes;
        },
        { fields: Object.keys(changes) },
      );
    },

    revoke(actor: Actor, id: string): Promise<KeyRow> {
      return mutate(actor, id, "key.revoke", (row) => {
        allow(row, { kind: "revoke" });
        return row.status === "revoked" ? {} : { status: "revoked", revoked_at: clock.now() };
      });
    },

    /** `details` go in the audit record (an anomaly rule's name and evidence, for an auto-freeze). */
    freeze(actor: Actor, id: string, details?: Record<string, unknown>): Promise<KeyRow> {
      return mutate(
        actor,
        id,
        "key.freeze",
        (row) => {
          allow(row, { kind: "freeze" });
          return { status: "frozen" };
        },
        details,
      );
    },

    unfreeze(actor: Actor, id: string): Promise<KeyRow> {
      return mutate(actor, id, "key.unfreeze", (row) => {
        allow(row, { kind: "unfreeze" });
        return { status: "active" };
      });
    },

    /**
     * Issues a successor with the same owner, scopes and limits; the old key keeps working for
     * `graceS` seconds, then fails with key_expired. A key can be rotated once; concurrent
     * rotate/revoke of one key serialize on its row.
     */
    async rotate(actor: Actor, id: string, graceS: number): Promise<{ row: KeyRow; secret: string; previous: KeyRow }> {
      const now = clock.now();
      const result = await change(actor, async (tx) => {
        const old = await store.getForUpdate(tx, id);
        if (!old) throw notFound(`key ${id}`);
        allow(old, { kind: "rotate" });
        const next = fresh(
          {
            owner: old.owner,
            name: old.name ?? undefined,
            scopes: JSON.parse(old.scopes) as string[],
            expires_at: old.expires_at,
            rate_limit: old.rate_limit ? (JSON.parse(old.rate_limit) as RateLimitPolicy) : null,
            quota: old.quota ? (JSON.parse(old.quota) as QuotaPolicy) : null,
            ip_allow: old.ip_allow ? (JSON.parse(old.ip_allow) as string[]) : null,
            canary: Number(old.canary) === 1,
          },
          old.lineage,
        );
        await store.insert(tx, next.row);
        const graceEnd = now + graceS * 1000;
        const expires = old.expires_at === null ? graceEnd : Math.min(old.expires_at, graceEnd);
        const previous = (await store.update(tx, id, { expires_at: expires, rotated_to: next.row.id }, now)) as KeyRow;
        await deps.events?.emitIn(tx, "key.rotated", {
          ...keyEventData(previous, actor),
          new_key_id: next.row.id,
          grace_s: graceS,
          expires_at: new Date(expires).toISOString(),
        });
        return {
          result: { ...next, previous },
          event: keyEvent(actor, "key.rotate", previous, { new_key: next.row.id, grace_s: graceS }),
          changes: [{ kind: "key", ref: id }],
        };
      });
      changed(id, "key.rotate");
      cache.forgetHash(result.row.hash);
      return result;
    },

    /**
     * The hot-path lookup, memory only: shape and checksum first (no I/O for garbage), then the
     * cache. `undefined` means not cached: call `load`, then ask again.
     */
    cached(secret: string): KeyEntry | null | "malformed" | undefined {
      if (!isWellFormed(secret, "kwk")) return "malformed";
      const hit = cache.get(hashSecret(secret, deps.integrity));
      deps.onLookup?.(hit !== undefined);
      return hit;
    },

    /** One store read by hash; fills the cache (also with "unknown"). Concurrent loads of one key share it. */
    load(secret: string): Promise<KeyEntry | null> {
      const hash = hashSecret(secret, deps.integrity);
      // A change that lands while this read is in flight wins: the cache drops the read's result.
      return cache.load(hash, async () => {
        // Not found keyed: a key stored before keyed hashes, if the upgrade marked it (crypto/legacy-hashes.ts).
        const row =
          (await store.getByHash(hash)) ??
          ((await upgradeLegacySecret(db, deps.integrity, "api_keys", secret))
            ? await store.getByHash(hash)
            : undefined);
        return row ? toEntry(row) : null;
      });
    },

    /** Memory only: the key with this id, or undefined when not cached (then `loadById`). */
    cachedById: (id: string): KeyEntry | undefined => cache.getById(id),

    /** One store read by id; fills the cache. Used for the keys access tokens name. */
    loadById(id: string): Promise<KeyEntry | null> {
      return cache.loadById(async () => {
        const row = await store.get(id);
        return row ? { hash: row.hash, entry: toEntry(row) } : null;
      });
    },

    /** cached() then load() when needed, for callers off the hot path. */
    async lookup(secret: string): Promise<KeyEntry | null | "malformed"> {
      const hit = this.cached(secret);
      return hit !== undefined ? hit : this.load(secret);
    },

    /** Drops a key from the caches (another replica changed it). */
    invalidate(id: string): void {
      changed(id, "invalidate");
    },

    /** Drops every cached key (this replica may have missed changes; see cluster/cluster-feed.ts). */
    invalidateAll(): void {
      cache.clear();
    },

    cacheStats: () => ({ size: cache.size }),
  };
}

export type KeysService = ReturnType<typeof createKeysService>;

/** The admin actions announced as webhook events. */
const ANNOUNCED: Readonly<Record<string, WebhookEventType>> = {
  "key.revoke": "key.revoked",
  "key.freeze": "key.frozen",
};

/** What a key event says: ids, owner, prefix and who acted (an anomaly rule's details included); never a secret or hash. */
function keyEventData(row: KeyRow, actor: Actor, details?: Record<string, unknown>): Record<string, unknown> {
  return {
    key_id: row.id,
    owner: row.owner,
    prefix: row.prefix,
    name: row.name,
    actor: actor.principal,
    ...(details ? { details } : {}),
  };
}
