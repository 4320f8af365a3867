import { createBoundedCache } from "@keyward/sdk/cache";
import { SLUG } from "@keyward/sdk/names";
import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner, type OwnedKeys } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { type ChangeFeed, createLocalChangeFeed } from "../cluster/change-feed.js";
import { conflict, invalidRequest, notFound } from "../errors.js";
import { type Db, isUniqueViolation } from "../store/db.js";
import type { AgentRow, AgentsStore } from "./agents-store.js";

export const AGENT_NAME = SLUG;

export interface Agent {
  name: string;
  upstream: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

/** What the gateway needs of an agent, parsed once. */
export interface RoutableAgent {
  name: string;
  upstream: URL;
}

/**
 * Agents: the protected upstreams behind /agents/{name}/…. The gateway reads them through an
 * in-memory cache that every change invalidates before the admin call returns.
 */
export function createAgentsService(deps: {
  db: Db;
  store: AgentsStore;
  clock: Clock;
  audit: AuditSink;
  ownedKeys: OwnedKeys;
  /** Where agent changes are announced to every replica (this one included). */
  feed?: ChangeFeed;
}) {
  const { db, store, clock, audit } = deps;
  const change = changeRunner(db, audit, deps.feed ?? createLocalChangeFeed());
  // Least recently used agents leave first; a change also voids a read of that agent in flight.
  const cache = createBoundedCache<string, RoutableAgent | null>({ max: 100_000 });
  const forget = (name?: string) => {
    if (name === undefined) cache.clear();
    else cache.delete(name);
  };
  const listeners: Array<(name: string, action: string) => void> = [];
  const changed = (name: string, action: string) => {
    forget(name);
    for (const l of listeners) l(name, action);
  };

  function parseUpstream(upstream: string): URL {
    let url: URL;
    try {
      url = new URL(upstream);
    } catch {
      throw invalidRequest("upstream: must be an absolute http(s) URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidRequest("upstream: must be http or https");
    if (url.username || url.password) throw invalidRequest("upstream: must not contain credentials");
    if (url.search || url.hash) throw invalidRequest("upstream: must not have a query or fragment");
    return url;
  }

  return {
    async create(
      actor: Actor,
      input: { name: string; upstream: string; description?: string | undefined },
    ): Promise<Agent> {
      if (!AGENT_NAME.test(input.name)) throw invalidRequest("name: must match [a-z0-9][a-z0-9-]{0,62}");
      parseUpstream(input.upstream);
      const now = clock.now();
      const row: AgentRow = {
        name: input.name,
        upstream: input.upstream,
        description: input.description ?? null,
        created_at: now,
        updated_at: now,
      };
      try {
        await change(actor, async (tx) => {
          await store.insert(tx, row);
          return {
            result: row,
            event: changeEvent(actor, "agent.create", `agent:${row.name}`, { upstream: row.upstream }),
            // Replicas may have cached "no such agent" under this name.
            changes: [{ kind: "agent", ref: row.name }],
          };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`agent ${input.name}`);
        throw err;
      }
      changed(row.name, "agent.create");
      return row;
    },

    async get(name: string): Promise<Agent> {
      const row = await store.get(name);
      if (!row) throw notFound(`agent ${name}`);
      return row;
    },

    list: (after: string | undefined, limit: number) => store.list(after, limit),

    async update(
      actor: Actor,
      name: string,
      patch: { upstream?: string | undefined; description?: string | null | undefined },
    ): Promise<Agent> {
      if (patch.upstream !== undefined) parseUpstream(patch.upstream);
      const row = await change(actor, async (tx) => {
        const current = await store.get(name, tx);
        if (!current) throw notFound(`agent ${name}`);
        const upstream = patch.upstream ?? current.upstream;
        const description = patch.description === undefined ? current.description : patch.description;
        const updated = await store.update(tx, name, upstream, description, clock.now());
        if (!updated) throw notFound(`agent ${name}`);
        return {
          result: updated,
          event: changeEvent(actor, "agent.update", `agent:${name}`, { upstream }),
          changes: [{ kind: "agent", ref: name }],
        };
      });
      changed(name, "agent.update");
      return row;
    },

    /** Deletes the agent and revokes the keys it owns (its own caller keys), in one transaction. */
    async remove(actor: Actor, name: string): Promise<void> {
      const revoked = await change(actor, async (tx) => {
        if (!(await store.delete(tx, name))) throw notFound(`agent ${name}`);
        const ids = await deps.ownedKeys.revokeIn(tx, `agent:${name}`);
        return {
          result: ids,
          event: changeEvent(actor, "agent.delete", `agent:${name}`, { revoked_keys: ids }),
          changes: [{ kind: "agent", ref: name }, ...ids.map((id) => ({ kind: "key" as const, ref: id }))],
        };
      });
      deps.ownedKeys.revoked(revoked);
      changed(name, "agent.delete");
    },

    /** Hears every committed change made here (metrics); other replicas hear through the feed. */
    onChange(listener: (name: string, action: string) => void): void {
      listeners.push(listener);
    },

    /** Memory only: the agent, null (no such agent), or undefined when not cached yet. */
    cached(name: string): RoutableAgent | null | undefined {
      return AGENT_NAME.test(name) ? cache.get(name) : null;
    },

    /** One store read; cached unless an agent changed while it was in flight. */
    async load(name: string): Promise<RoutableAgent | null> {
      if (!AGENT_NAME.test(name)) return null;
      return cache.load(name, async () => {
        const row = await store.get(name);
        return row ? { name: row.name, upstream: parseUpstream(row.upstream) } : null;
      });
    },

    async resolve(name: string): Promise<RoutableAgent | null> {
      const hit = this.cached(name);
      return hit !== undefined ? hit : this.load(name);
    },

    invalidate(name?: string): void {
      forget(name);
    },
  };
}

export type AgentsService = ReturnType<typeof createAgentsService>;
