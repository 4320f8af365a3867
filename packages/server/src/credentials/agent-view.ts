import { createHash } from "node:crypto";
import { type BoundedCache, createBoundedCache } from "@keyward/sdk/cache";
import type { Clock } from "../clock.js";
import { KeywardError } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import type { CredentialIntegrity } from "./credential-integrity.js";
import type { AgentCredentialRow, GrantsStore } from "./grants-store.js";

/**
 * What one agent can read, as of one snapshot of the store, and the responses built from it.
 *
 * Cursors: every credential and grant change takes a value of the credential clock (a counter
 * that serializes writers, see credentials-store nextSeq) and stamps the rows it changed. An
 * entry's `seq` is the latest stamp on its grant row or its credential row; the view's cursor is
 * the highest `seq` among them. Because writers commit in clock order, a snapshot that shows stamp
 * n shows every earlier stamp too, so "entries with seq > cursor" is exactly what changed since,
 * on any replica sharing the database. The cursor depends on this agent's rows only: other
 * agents' changes leave it, the body and its ETag alone, so polling clients get 304s.
 */
export interface ViewEntry {
  name: string;
  seq: number;
  /** Granted in read mode and the credential has a current version. */
  readable: boolean;
  version: number | null;
  value: string | null;
  expiresAt: number | null;
  /** Why a readable credential cannot be served right now. */
  unavailable: string | null;
}

export interface Representation {
  /** Encoded once per view: the bytes every request for it is sent. */
  body: Buffer;
  etag: string;
  /** `name@version` of every value in the body, comma-separated, for the audit record. */
  served: string;
  count: number;
}

export interface AgentView {
  agent: string;
  cursor: number;
  entries: readonly ViewEntry[];
  names: ReadonlySet<string>;
  /** When a served token expires: the view must be rebuilt then. */
  staleAt: number;
  full(): Representation;
  since(cursor: number): Representation;
}

const MAX_VALUES = 50_000;
const MAX_VIEWS = 10_000;
const DELTA_MEMO = 8;

export function createAgentViews(deps: {
  store: GrantsStore;
  open: (v: { name: string; version: number; value_enc: Buffer }) => string;
  clock: Clock;
  logger: Logger;
  /** Grant rows and pointers Keyward did not write are not served (credential-integrity.ts). */
  integrity: Pick<CredentialIntegrity, "grantIntact" | "pointerIntact">;
}) {
  const { store, clock, logger, integrity } = deps;
  /** Decrypted values by `name\0version`: a version never changes, so entries never go stale. */
  const values = createBoundedCache<string, string>({ max: MAX_VALUES });
  /** Live until a served token in them expires (`staleAt`); the least recently read leave first when full. */
  const views = createBoundedCache<string, AgentView>({ max: MAX_VIEWS, now: () => clock.now() });

  function openValue(row: AgentCredentialRow): { value: string | null; error: string | null } {
    const key = `${row.name}\0${row.version}`;
    const hit = values.get(key);
    if (hit !== undefined) return { value: hit, error: null };
    if (!row.value_enc) return { value: null, error: "its current version is missing" };
    try {
      const value = deps.open({ name: row.name, version: row.version as number, value_enc: row.value_enc });
      values.set(key, value);
      return { value, error: null };
    } catch (err) {
      // One damaged row must not take the agent's other credentials down with it: it is left
      // out, named in `unavailable`, and logged by record (never by content).
      logger.error(
        { credential: row.name, version: row.version, err: (err as Error).message },
        "credential unreadable",
      );
      return { value: null, error: "it cannot be decrypted" };
    }
  }

  function build(agent: string, rows: readonly AgentCredentialRow[]): AgentView {
    const now = clock.now();
    let cursor = 0;
    let staleAt = Number.POSITIVE_INFINITY;
    const entries: ViewEntry[] = [];
    for (const row of rows) {
      // A grant Keyward did not write is absent: no entry, no cursor.
      if (!integrity.grantIntact({ ...row, mac: row.grant_mac })) continue;
      // A credential's own changes count only where the agent can read it.
      const seq = row.mode === "read" ? Math.max(row.grant_seq, row.cred_seq ?? 0) : row.grant_seq;
      cursor = Math.max(cursor, seq);
      const readable = row.mode === "read" && row.deleted_at === null && row.version !== null;
      const entry: ViewEntry = {
        name: row.name,
        seq,
        readable,
        version: readable ? row.version : null,
        value: null,
        expiresAt: readable ? row.expires_at : null,
        unavailable: null,
      };
      if (readable) {
        if (!pointerIntact(row)) {
          // The pointer was moved (or the row edited) outside Keyward: whichever version it names
          // is not served. Named in `unavailable` like an undecryptable one; alarmed by the check.
          entry.version = null;
          entry.unavailable = "it failed its integrity check";
        } else if (row.expires_at !== null && row.expires_at <= now) {
          entry.unavailable = "its token expired and could not be refreshed";
        } else {
          const { value, error } = openValue(row);
          entry.value = value;
          entry.unavailable = error;
          if (value !== null && row.expires_at !== null) staleAt = Math.min(staleAt, row.expires_at);
        }
      }
      entries.push(entry);
    }
    return makeView(agent, cursor, entries, staleAt);
  }

  function pointerIntact(row: AgentCredentialRow): boolean {
    if (row.type === null || row.latest_version === null || row.config_seq === null) return false;
    return integrity.pointerIntact(
      {
        name: row.name,
        type: row.type,
        current_version: row.version,
        latest_version: row.latest_version,
        egress: row.egress,
        provider: row.provider,
        config_seq: row.config_seq,
        deleted_at: row.deleted_at,
        pointer_mac: row.pointer_mac,
      },
      row.max_version,
    );
  }

  return {
    /** The agent's current view: from memory, or one store read. */
    get(agent: string): Promise<AgentView> {
      return views.load(
        agent,
        async () => build(agent, await store.agentCredentials(agent)),
        (view) => (view.staleAt === Number.POSITIVE_INFINITY ? undefined : view.staleAt - clock.now()),
      );
    },

    /** `credential` change handler: drops the views that mention `name`; answers those agents. */
    credentialChanged(name: string): string[] {
      values.deleteWhere((_, key) => key.startsWith(`${name}\0`));
      // Also voids every view load in flight: any of them may have read the old credential.
      const agents: string[] = [];
      views.deleteWhere((view, agent) => view.names.has(name) && agents.push(agent) > 0);
      return agents;
    },

    /** `grant` and `agent` change handler. */
    grantChanged(agent: string): void {
      views.delete(agent);
    },

    /** This replica may have missed changes: forget everything. */
    reset(): void {
      views.clear();
      values.clear();
    },
  };
}

function makeView(agent: string, cursor: number, entries: ViewEntry[], staleAt: number): AgentView {
  const unavailable = entries.filter((e) => e.unavailable !== null);
  let full: Representation | undefined;
  /** Deltas by the client's cursor, the few most recently asked for (made on first use: most views never get one). */
  let memo: BoundedCache<number, Representation> | undefined;
  const render = (changed: readonly ViewEntry[], removed: readonly string[], at: number): Representation => {
    // Null prototype: a credential may be called `constructor`, and `__proto__` is refused by name.
    const credentials: Record<string, { value: string; version: number; expires_at?: string }> = Object.create(null);
    const served: string[] = [];
    for (const e of changed) {
      if (e.value === null || e.version === null) continue;
      credentials[e.name] =
        e.expiresAt === null
          ? { value: e.value, version: e.version }
          : { value: e.value, version: e.version, expires_at: new Date(e.expiresAt).toISOString() };
      served.push(`${e.name}@${e.version}`);
    }
    const body: Record<string, unknown> = { credentials, removed, cursor: String(at) };
    if (unavailable.length > 0) {
      const why: Record<string, { code: string; message: string }> = Object.create(null);
      for (const e of unavailable) {
        why[e.name] = {
          code: "credential_unavailable",
          message: `credential ${e.name} is unavailable: ${e.unavailable}`,
        };
      }
      body.unavailable = why;
    }
    const bytes = Buffer.from(JSON.stringify(body), "utf8");
    return { body: bytes, etag: etagOf(bytes), served: served.join(","), count: served.length };
  };
  return {
    agent,
    cursor,
    entries,
    names: new Set(entries.map((e) => e.name)),
    staleAt,
    full() {
      full ??= render(
        entries.filter((e) => e.readable),
        [],
        cursor,
      );
      return full;
    },
    since(after) {
      memo ??= createBoundedCache({ max: DELTA_MEMO });
      let rep = memo.get(after);
      if (!rep) {
        const newer = entries.filter((e) => e.seq > after);
        rep = render(
          newer.filter((e) => e.readable),
          newer.filter((e) => !e.readable).map((e) => e.name),
          // A cursor ahead of this view (a replica that has not caught up yet) is kept, so the
          // client never goes back and is not sent again what it already has.
          Math.max(after, cursor),
        );
        memo.set(after, rep);
      }
      return rep;
    },
  };
}

/** A strong validator: the body's own hash, so equal bodies (and only those) share it. */
function etagOf(body: Buffer): string {
  return `"${createHash("sha256").update(body).digest("base64url").slice(0, 32)}"`;
}

/** `?since=` and `Last-Event-ID`: the decimal cursor a response or event gave out. */
export function parseCursor(raw: string | null | undefined, where: string): number | undefined {
  if (raw === null || raw === undefined) return undefined;
  // 16 digits may exceed what a double holds exactly: refuse rather than answer for another number.
  const n = /^(0|[1-9][0-9]{0,15})$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new KeywardError("invalid_request", `${where}: not a valid cursor`);
  return n;
}

export type AgentViews = ReturnType<typeof createAgentViews>;
