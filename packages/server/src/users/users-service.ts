import { createBoundedCache } from "@keyward/sdk/cache";
import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import { CREDENTIAL_NAME_HINT, checkValue, isCredentialName } from "../credentials/credential-rules.js";
import { DecryptError, type Keyring } from "../crypto/keyring.js";
import { invalidRequest, KeywardError, notFound } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import type { UserCredentialLookup, UserCredentialSource } from "./user-credential-source.js";
import { isUserId, USER_ID_HINT, USER_PREFIX } from "./user-rules.js";
import { type UserCredentialMeta, type UsersStore, type UserWithCredentials, userValueAad } from "./users-store.js";

/** What a write made: never the value. */
export interface UserCredentialWritten {
  user: string;
  name: string;
  version: number;
  created: boolean;
  updated_at: number;
}

/** Users whose decrypted values are kept; past it the cache starts over (it is only a cache). */
const MAX_CACHED_USERS = 10_000;

/**
 * Per-user tool credentials (SPEC §3, §6, §8): sealed values keyed by (user, name), written by
 * admins and by the users themselves, read only by the tool paths through `resolve`.
 *
 * Every write commits with its audit record and a `user_credential` change (ref = the user id), so
 * every replica drops that user's cached values and tells its `onChange` listeners (the MCP
 * gateway restarts the user's processes with the new values). `resolve` is on the tool-call hot
 * path: a cache hit is a map lookup, no store read and no decryption.
 */
export function createUsersService(deps: {
  db: Db;
  store: UsersStore;
  keyring: Keyring;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  logger: Logger;
}) {
  const { db, store, keyring, clock, changes, logger } = deps;
  const change = changeRunner(db, deps.audit, changes);
  // Least recently used users leave first: a full cache never empties itself (no refill storm).
  const cache = createBoundedCache<string, ReadonlyMap<string, string>>({ max: MAX_CACHED_USERS });
  /**
   * Users resolved on this replica, least recently used forgotten first: told on a reset, when we cannot know whose
   * values changed. Bounded: a user forgotten here is still caught by the MCP gateway, which
   * compares the values it started an upstream with on every call.
   */
  const resolved = createBoundedCache<string, true>({ max: 100_000 });
  const listeners: Array<(user: string) => void> = [];

  function checkIds(user: string, name: string): void {
    if (!isUserId(user)) throw invalidRequest(`user: ${USER_ID_HINT}`);
    if (!isCredentialName(name)) throw invalidRequest(`name: ${CREDENTIAL_NAME_HINT}`);
  }

  function seal(user: string, name: string, version: number, value: string): Buffer {
    const plain = Buffer.from(value, "utf8");
    try {
      return keyring.seal(plain, userValueAad(user, name, version));
    } finally {
      plain.fill(0);
    }
  }

  function open(user: string, name: string, version: number, sealed: Buffer): string {
    const aad = userValueAad(user, name, version);
    let plain: Buffer;
    try {
      plain = keyring.open(sealed, aad);
    } catch (err) {
      if (err instanceof DecryptError) {
        throw new KeywardError("credential_unavailable", `${aad} cannot be decrypted: ${err.message}`);
      }
      throw err;
    }
    try {
      return plain.toString("utf8");
    } finally {
      plain.fill(0);
    }
  }

  /** One store read per user however many calls miss at once; a change in between is never cached. */
  function load(user: string): Promise<ReadonlyMap<string, string>> {
    return cache.load(user, async () => {
      const rows = await store.sealed(user);
      return new Map(rows.map((r) => [r.name, open(user, r.name, r.version, r.value_enc)]));
    });
  }

  function notify(user: string): void {
    for (const l of listeners) {
      try {
        l(user);
      } catch (err) {
        logger.warn({ err: (err as Error).message, user: `${USER_PREFIX}${user}` }, "user credential listener failed");
      }
    }
  }

  function invalidate(user?: string): void {
    // Also voids a read in flight: a caller arriving after the change must not join one that began before it.
    if (user === undefined) cache.clear();
    else cache.delete(user);
  }

  changes.on("user_credential", (user) => {
    invalidate(user);
    notify(user);
  });
  changes.onReset(() => {
    invalidate();
    for (const user of [...resolved.keys()]) notify(user);
  });

  const source: UserCredentialSource = {
    async resolve(user: string, names: readonly string[]): Promise<UserCredentialLookup> {
      resolved.set(user, true);
      const values = cache.get(user) ?? (await load(user));
      const found: Array<[string, string]> = [];
      for (const name of names) {
        const value = values.get(name);
        if (value === undefined) return { ok: false, missing: name };
        found.push([name, value]);
      }
      // fromEntries defines own properties: a name like `__proto__` cannot reach a prototype.
      return { ok: true, values: Object.fromEntries(found) };
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };

  return {
    source,

    /** Sets a value: a new version of the name (1 when the user had none). */
    async put(actor: Actor, user: string, name: string, value: string): Promise<UserCredentialWritten> {
      checkIds(user, name);
      checkValue(value);
      return change(actor, async (tx) => {
        const now = clock.now();
        const current = await store.lock(tx, user, name, now, actor.principal);
        const created = current.version === 0;
        const version = current.version + 1;
        await store.write(tx, {
          user_id: user,
          name,
          version,
          value_enc: seal(user, name, version, value),
          created_at: created ? now : current.created_at,
          updated_at: now,
          created_by: created ? actor.principal : current.created_by,
        });
        return {
          result: { user, name, version, created, updated_at: now },
          event: changeEvent(actor, created ? "user_credential.create" : "user_credential.update", target(user), {
            name,
            version,
          }),
          changes: [{ kind: "user_credential", ref: user }],
        };
      });
    },

    /** Deletes the value for good. 404 when the user has no such credential. */
    async remove(actor: Actor, user: string, name: string): Promise<void> {
      checkIds(user, name);
      await change(actor, async (tx) => {
        if (!(await store.remove(tx, user, name))) throw notFound(`credential ${name} of user ${user}`);
        return {
          result: undefined,
          event: changeEvent(actor, "user_credential.delete", target(user), { name }),
          changes: [{ kind: "user_credential", ref: user }],
        };
      });
    },

    /** Names and versions, never values (limit + 1 rows, for paging). */
    async list(user: string, after: string | undefined, limit: number): Promise<UserCredentialMeta[]> {
      if (!isUserId(user)) throw invalidRequest(`user: ${USER_ID_HINT}`);
      return store.list(user, after, limit);
    },

    /**
     * Users who have credentials, by id, with their credentials' names and versions, never values
     * (limit + 1 users, for paging). With `credential`, only users who have set that name.
     */
    async listUsers(query: {
      after: string | undefined;
      limit: number;
      credential?: string | undefined;
    }): Promise<UserWithCredentials[]> {
      // The cursor is the last user id of a page; anything else was not handed out by this list.
      if (query.after !== undefined && !isUserId(query.after))
        throw invalidRequest("cursor: not a cursor of this list");
      if (query.credential !== undefined && !isCredentialName(query.credential)) {
        throw invalidRequest(`credential: ${CREDENTIAL_NAME_HINT}`);
      }
      return store.users(query.after, query.limit, query.credential);
    },

    /** Drops every cached value (tests, shutdown). */
    clear(): void {
      invalidate();
    },
  };
}

const target = (user: string) => `${USER_PREFIX}${user}`;

export type UsersService = ReturnType<typeof createUsersService>;
