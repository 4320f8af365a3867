import { createBoundedCache } from "@keyward/sdk/cache";
import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import { invalidRequest, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { CredentialIntegrity } from "./credential-integrity.js";
import type { CredentialsStore } from "./credentials-store.js";
import type { CredentialMode, GrantRow, GrantsStore } from "./grants-store.js";

export interface Grants {
  agent: string;
  credentials: Array<{ name: string; mode: CredentialMode }>;
  user_credentials: string[];
  may_call: string[];
}

export interface GrantsInput {
  credentials: Array<{ name: string; mode: CredentialMode }>;
  user_credentials?: string[] | undefined;
  may_call?: string[] | undefined;
}

const MAX_CACHE = 10_000;

/**
 * Which credentials an agent may read or have injected, whose user credentials it may fetch, and
 * which agents it may call (token exchange). Replace semantics: a PUT states the whole set.
 * Reads used on request paths (mayCall, userCredentials, credentialMode) are cached per agent and
 * dropped by the `grant` change handler, on every replica. A row without Keyward's MAC (written
 * with database access alone, or edited so) is treated as absent everywhere (credential-integrity.ts).
 */
export function createGrantsService(deps: {
  db: Db;
  store: GrantsStore;
  credentials: CredentialsStore;
  /** Inside the change's transaction (locks the agent row on PostgreSQL, so a delete waits). */
  agentExists: (tx: Db, name: string) => Promise<boolean>;
  audit: AuditSink;
  changes: ChangeFeed;
  integrity: CredentialIntegrity;
}) {
  const { db, store, integrity } = deps;
  /** The agent's live grants that Keyward wrote. */
  const intact = async (agent: string, tx: Db = db) =>
    (await store.list(agent, tx)).filter((r) => integrity.grantIntact(r));
  const change = changeRunner(db, deps.audit, deps.changes);
  // Least recently used agents leave first; an invalidation also voids a read of that agent in flight.
  const cache = createBoundedCache<string, Grants>({ max: MAX_CACHE });

  function toGrants(agent: string, rows: readonly GrantRow[]): Grants {
    const g: Grants = { agent, credentials: [], user_credentials: [], may_call: [] };
    for (const r of rows) {
      if (r.kind === "credential" && (r.mode === "read" || r.mode === "inject")) {
        g.credentials.push({ name: r.name, mode: r.mode });
      } else if (r.kind === "user_credential") g.user_credentials.push(r.name);
      else if (r.kind === "may_call") g.may_call.push(r.name);
    }
    return g;
  }

  function cached(agent: string): Promise<Grants> {
    return cache.load(agent, async () => toGrants(agent, await intact(agent)));
  }

  return {
    async get(agent: string): Promise<Grants> {
      if (!(await deps.agentExists(db, agent))) throw notFound(`agent ${agent}`);
      return toGrants(agent, await intact(agent));
    },

    async replace(actor: Actor, agent: string, input: GrantsInput): Promise<Grants> {
      const wanted = new Map<string, CredentialMode>();
      input.credentials.forEach((c, i) => {
        if (wanted.has(c.name)) throw invalidRequest(`credentials.${i}.name: ${c.name} is listed twice`);
        wanted.set(c.name, c.mode);
      });
      const userCredentials = unique(input.user_credentials ?? [], "user_credentials");
      const mayCall = unique(input.may_call ?? [], "may_call");

      return change(actor, async (tx) => {
        const seq = await deps.credentials.nextSeq(tx);
        if (!(await deps.agentExists(tx, agent))) throw notFound(`agent ${agent}`);
        const known = await deps.credentials.existing(tx, [...wanted.keys()]);
        for (const name of wanted.keys()) {
          if (!known.has(name)) throw invalidRequest(`credentials: no credential named ${name}`);
        }
        for (const name of mayCall) {
          if (!(await deps.agentExists(tx, name))) throw invalidRequest(`may_call: no agent named ${name}`);
        }
        // Only rows whose mode changes get the new clock value: a `since` cursor then reports
        // exactly the names whose readability changed. A row that fails its MAC counts as
        // "tampered", unlike any mode: it is rewritten (wanted) or tombstoned, never kept as is.
        const before = new Map<string, GrantRow["mode"] | "tampered">(
          (await store.credentialRows(tx, agent)).map((r) => [r.name, integrity.grantIntact(r) ? r.mode : "tampered"]),
        );
        const upsert = (name: string, mode: CredentialMode | "none") =>
          store.upsertCredential(
            tx,
            agent,
            name,
            mode,
            seq,
            integrity.grantMac({ agent, kind: "credential", name, mode }),
          );
        for (const [name, mode] of wanted) {
          if (before.get(name) !== mode) await upsert(name, mode);
        }
        for (const [name, mode] of before) {
          if (mode !== "none" && !wanted.has(name)) await upsert(name, "none");
        }
        for (const kind of ["user_credential", "may_call"] as const) {
          await store.replacePlain(tx, agent, kind, kind === "may_call" ? mayCall : userCredentials, seq, (name) =>
            integrity.grantMac({ agent, kind, name, mode: "granted" }),
          );
        }
        const grants = toGrants(agent, await intact(agent, tx));
        return {
          result: grants,
          event: changeEvent(actor, "grants.set", `agent:${agent}`, {
            credentials: grants.credentials.map((c) => `${c.name}:${c.mode}`),
            user_credentials: grants.user_credentials,
            may_call: grants.may_call,
          }),
          changes: [{ kind: "grant", ref: agent }],
        };
      });
    },

    /** May `agent` obtain a token for `target` by token exchange (SPEC §5)? */
    async mayCall(agent: string, target: string): Promise<boolean> {
      return (await cached(agent)).may_call.includes(target);
    },

    /** The per-user credential names `agent` may fetch for its users (SPEC §6). */
    async userCredentials(agent: string): Promise<readonly string[]> {
      return (await cached(agent)).user_credentials;
    },

    /** How `agent` may use credential `name`: read, inject, or not at all. */
    async credentialMode(agent: string, name: string): Promise<CredentialMode | null> {
      return (await cached(agent)).credentials.find((c) => c.name === name)?.mode ?? null;
    },

    /** The `grant` change handler: drops what is cached about `agent` (every agent without one). */
    invalidate(agent?: string): void {
      if (agent === undefined) cache.clear();
      else cache.delete(agent);
    },

    /** Inside an agent's delete transaction: its grants go with it. */
    removeAgentIn: (tx: Db, agent: string) => store.removeAgent(tx, agent),
  };
}

function unique(names: readonly string[], field: string): string[] {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw invalidRequest(`${field}: ${n} is listed twice`);
    seen.add(n);
  }
  return [...seen].sort();
}

export type GrantsService = ReturnType<typeof createGrantsService>;
