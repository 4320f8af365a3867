import type { Actor } from "../admin/admin-context.js";
import { AGENT_NAME } from "../agents/agents-service.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { conflict, invalidRequest, notFound } from "../errors.js";
import { isUniqueViolation } from "../store/db.js";
import type { ConsumersStore } from "./consumers-store.js";

export interface Consumer {
  name: string;
  metadata: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

const MAX_METADATA_BYTES = 16 * 1024;

/** Consumers: the callers (a department, an app) that own API keys. */
export function createConsumersService(deps: { store: ConsumersStore; clock: Clock; audit: AuditSink }) {
  const { store, clock, audit } = deps;

  const toConsumer = (r: { name: string; metadata: string; created_at: number; updated_at: number }): Consumer => ({
    name: r.name,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    created_at: r.created_at,
    updated_at: r.updated_at,
  });

  function encodeMetadata(metadata: Record<string, unknown> | undefined): string {
    const text = JSON.stringify(metadata ?? {});
    if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalidRequest("metadata: must be at most 16 KiB of JSON");
    return text;
  }

  const audited = (actor: Actor, action: string, name: string) =>
    audit.record({
      actor: actor.principal,
      action,
      target: `consumer:${name}`,
      outcome: "success",
      ...(actor.ip ? { ip: actor.ip } : {}),
      ...(actor.requestId ? { requestId: actor.requestId } : {}),
    });

  return {
    async create(
      actor: Actor,
      input: { name: string; metadata?: Record<string, unknown> | undefined },
    ): Promise<Consumer> {
      if (!AGENT_NAME.test(input.name)) throw invalidRequest("name: must match [a-z0-9][a-z0-9-]{0,62}");
      const now = clock.now();
      const row = { name: input.name, metadata: encodeMetadata(input.metadata), created_at: now, updated_at: now };
      try {
        await store.insert(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`consumer ${input.name}`);
        throw err;
      }
      await audited(actor, "consumer.create", row.name);
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
      const row = await store.update(name, encodeMetadata(metadata), clock.now());
      if (!row) throw notFound(`consumer ${name}`);
      await audited(actor, "consumer.update", name);
      return toConsumer(row);
    },
    async remove(actor: Actor, name: string): Promise<void> {
      if (!(await store.delete(name))) throw notFound(`consumer ${name}`);
      await audited(actor, "consumer.delete", name);
    },
  };
}

export type ConsumersService = ReturnType<typeof createConsumersService>;
