import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner, type OwnedKeys } from "../admin/audited-change.js";
import { AGENT_NAME } from "../agents/agents-service.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { type ChangeFeed, createLocalChangeFeed } from "../cluster/change-feed.js";
import { conflict, invalidRequest, notFound } from "../errors.js";
import { type Db, isUniqueViolation } from "../store/db.js";
import type { ConsumersStore } from "./consumers-store.js";

export interface Consumer {
  name: string;
  metadata: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

const MAX_METADATA_BYTES = 16 * 1024;

/** Consumers: the callers (a department, an app) that own API keys. */
export function createConsumersService(deps: {
  db: Db;
  store: ConsumersStore;
  clock: Clock;
  audit: AuditSink;
  ownedKeys: OwnedKeys;
  /** Where consumer changes (and the keys a deletion revokes) are announced to every replica. */
  feed?: ChangeFeed;
}) {
  const { db, store, clock, audit } = deps;
  const change = changeRunner(db, audit, deps.feed ?? createLocalChangeFeed());

  const toConsumer = (r: { name: string; metadata: string; created_at: number; updated_at: number }): Consumer => ({
    name: r.name,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    created_at: r.created_at,
    updated_at: r.updated_at,
  });

  function encodeMetadata(metadata: Record<string, unknown> | undefined): string {
    let text: string;
    try {
      text = JSON.stringify(metadata ?? {});
    } catch {
      // Only a pathological value (nested past the stack) fails to serialize.
      throw invalidRequest("metadata: is not serializable JSON (nested too deeply?)");
    }
    if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalidRequest("metadata: must be at most 16 KiB of JSON");
    return text;
  }

  return {
    async create(
      actor: Actor,
      input: { name: string; metadata?: Record<string, unknown> | undefined },
    ): Promise<Consumer> {
      if (!AGENT_NAME.test(input.name)) throw invalidRequest("name: must match [a-z0-9][a-z0-9-]{0,62}");
      const now = clock.now();
      const row = { name: input.name, metadata: encodeMetadata(input.metadata), created_at: now, updated_at: now };
      try {
        await change(actor, async (tx) => {
          await store.insert(tx, row);
          return {
            result: undefined,
            event: changeEvent(actor, "consumer.create", `consumer:${row.name}`),
            changes: [{ kind: "consumer", ref: row.name }],
          };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`consumer ${input.name}`);
        throw err;
      }
      return toConsumer(row);
    },
    async get(name: string): Promise<Consumer> {
      const row = await store.get(name);
      if (!row) throw notFound(`consumer ${name}`);
      return toConsumer(row);
    },
    async exists(name: string): Promise<boolean> {
      return (await store.get(name)) !== undefined;
    },
    async list(after: string | undefined, limit: number): Promise<Consumer[]> {
      return (await store.list(after, limit)).map(toConsumer);
    },
    async update(actor: Actor, name: string, metadata: Record<string, unknown>): Promise<Consumer> {
      const encoded = encodeMetadata(metadata);
      const row = await change(actor, async (tx) => {
        const updated = await store.update(tx, name, encoded, clock.now());
        if (!updated) throw notFound(`consumer ${name}`);
        return {
          result: updated,
          event: changeEvent(actor, "consumer.update", `consumer:${name}`),
          changes: [{ kind: "consumer", ref: name }],
        };
      });
      return toConsumer(row);
    },
    /** Deletes the consumer and revokes its keys, in one transaction: no key outlives its owner. */
    async remove(actor: Actor, name: string): Promise<void> {
      const revoked = await change(actor, async (tx) => {
        if (!(await store.delete(tx, name))) throw notFound(`consumer ${name}`);
        const ids = await deps.ownedKeys.revokeIn(tx, `consumer:${name}`);
        return {
          result: ids,
          event: changeEvent(actor, "consumer.delete", `consumer:${name}`, { revoked_keys: ids }),
          changes: [{ kind: "consumer", ref: name }, ...ids.map((id) => ({ kind: "key" as const, ref: id }))],
        };
      });
      deps.ownedKeys.revoked(revoked);
    },
  };
}

export type ConsumersService = ReturnType<typeof createConsumersService>;
