import type { ServerResponse } from "node:http";
import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { AgentView, AgentViews } from "./agent-view.js";

/**
 * The SSE hub behind GET /v1/credentials/events.
 *
 * Change notifications only say "look again": the hub reloads the agent's view (one store read
 * per agent, however many of its clients are connected) and sends each client what changed since
 * the last event it got. So an event is never invented from a message, a missed or doubled
 * notification costs nothing, and replay after `Last-Event-ID` is the same code path as a live
 * change. Event ids are cursors: the id of the last event sent for one clock value, so a client
 * cut off in the middle of a group gets the whole group again.
 *
 * Writes never wait for a client: a client whose unsent bytes pass `maxBufferBytes` is dropped
 * (it reconnects with Last-Event-ID and loses nothing).
 */
interface Client {
  agent: string;
  /** Every key the connecting credential rests on: a change to any of them ends the stream. */
  keyIds: readonly string[];
  /** The access token it connected with, if any: revoking it ends the stream. */
  jti: string | undefined;
  res: ServerResponse;
  /** The cursor this client has everything up to; undefined until its first sync ("from now"). */
  lastSeq: number | undefined;
  /** When the credential it connected with stops being valid (key expiry, token exp). */
  expiresAt: number | null;
  /** Ends the stream at `expiresAt`, to the millisecond rather than at the next heartbeat. */
  expiry: NodeJS.Timeout | undefined;
}

interface AgentState {
  clients: Set<Client>;
  /** The names of the last view synced: a credential change matters to this agent only if listed. */
  names: ReadonlySet<string> | undefined;
  running: boolean;
  again: boolean;
  retry: NodeJS.Timeout | undefined;
}

export interface AttachOptions {
  agent: string;
  keyIds: readonly string[];
  jti: string | undefined;
  res: ServerResponse;
  since: number | undefined;
  expiresAt: number | null;
}

/**
 * Streams open at once (issue 18, finding 6): each holds a socket, a file descriptor, until its
 * client goes, so without a cap one key could take every descriptor the process has. Counted per
 * key the caller authenticated with (a token counts against its client key), per source address
 * (as caller-auth reads it, through trusted proxies) and in all.
 */
export interface StreamLimits {
  perKey: number;
  perAddress: number;
  total: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { perKey: 16, perAddress: 64, total: 10_000 };

export type StreamRefusal = "per_key" | "per_address" | "total";

const RETRY_MS = 1000;
/** setTimeout's longest delay; a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createCredentialEvents(deps: {
  views: AgentViews;
  clock: Clock;
  logger: Logger;
  heartbeatMs: number;
  maxBufferBytes?: number;
  limits?: StreamLimits;
}) {
  const { views, clock, logger } = deps;
  const maxBuffer = deps.maxBufferBytes ?? 1024 * 1024;
  const limits = deps.limits ?? DEFAULT_STREAM_LIMITS;
  const agents = new Map<string, AgentState>();
  let closed = false;
  // Slots held, counted from reservation (before the stream's first await) to the socket's close.
  const perKey = new Map<string, number>();
  const perAddress = new Map<string, number>();
  let total = 0;
  const dec = (m: Map<string, number>, k: string) => {
    const n = (m.get(k) ?? 1) - 1;
    if (n === 0) m.delete(k);
    else m.set(k, n);
  };

  const heartbeat = setInterval(() => {
    const now = clock.now();
    for (const state of agents.values()) {
      for (const c of state.clients) {
        if (c.expiresAt !== null && c.expiresAt <= now) c.res.end();
        else write(c, ": keep-alive\n\n");
      }
    }
  }, deps.heartbeatMs);
  heartbeat.unref();

  /** Ends the stream when its credential expires; the client reconnects and is judged afresh. */
  function armExpiry(c: Client): void {
    if (c.expiresAt === null) return;
    const left = c.expiresAt - clock.now();
    if (left <= 0) {
      c.res.end();
      return;
    }
    c.expiry = setTimeout(() => armExpiry(c), Math.min(left, MAX_TIMER_MS));
    c.expiry.unref();
  }

  function write(c: Client, chunk: string): void {
    if (c.res.destroyed || c.res.writableEnded) return;
    c.res.write(chunk);
    if (c.res.writableLength > maxBuffer) {
      logger.warn({ agent: c.agent, buffered: c.res.writableLength }, "credential event client too slow: dropped");
      c.res.destroy();
    }
  }

  function send(c: Client, view: AgentView): void {
    if (c.lastSeq === undefined) {
      c.lastSeq = view.cursor;
      return;
    }
    const after = c.lastSeq;
    if (view.cursor <= after) return;
    const newer = view.entries.filter((e) => e.seq > after).sort((a, b) => a.seq - b.seq || cmp(a.name, b.name));
    let out = "";
    for (let i = 0; i < newer.length; i++) {
      const e = newer[i]!;
      let event: string;
      if (!e.readable) event = `event: removed\ndata: ${JSON.stringify({ name: e.name })}\n`;
      else if (e.value !== null)
        event = `event: changed\ndata: ${JSON.stringify({ name: e.name, version: e.version })}\n`;
      else continue; // readable but unavailable: nothing to fetch yet
      const lastOfGroup = newer[i + 1]?.seq !== e.seq;
      out += lastOfGroup ? `${event}id: ${e.seq}\n\n` : `${event}\n`;
    }
    c.lastSeq = view.cursor;
    if (out) write(c, out);
  }

  async function sync(agent: string): Promise<void> {
    const state = agents.get(agent);
    if (!state || closed) return;
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    try {
      do {
        state.again = false;
        const view = await views.get(agent);
        state.names = view.names;
        for (const c of state.clients) send(c, view);
      } while (state.again && !closed);
    } catch (err) {
      // The store is unreachable: clients keep their connection and heartbeats; try again soon.
      logger.warn({ agent, err: (err as Error).message }, "credential events: cannot load view; retrying");
      clearTimeout(state.retry);
      state.retry = setTimeout(() => void sync(agent), RETRY_MS);
      state.retry.unref();
    } finally {
      state.running = false;
    }
  }

  return {
    /**
     * Takes a stream slot for `keyId` from `address` until `res` closes, or says which cap is
     * full. Taken before anything is awaited, so concurrent requests cannot all pass the check.
     */
    reserve(keyId: string, address: string, res: ServerResponse): StreamRefusal | undefined {
      if (total >= limits.total) return "total";
      if ((perKey.get(keyId) ?? 0) >= limits.perKey) return "per_key";
      if ((perAddress.get(address) ?? 0) >= limits.perAddress) return "per_address";
      total++;
      perKey.set(keyId, (perKey.get(keyId) ?? 0) + 1);
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        total--;
        dec(perKey, keyId);
        dec(perAddress, address);
      };
      // A client gone before its stream started (during the route's await) releases it too.
      if (res.destroyed) release();
      else res.once("close", release);
      return undefined;
    },

    /** Slots held now (tests, metrics). */
    slots(): { total: number; keys: number; addresses: number } {
      return { total, keys: perKey.size, addresses: perAddress.size };
    },

    /** Starts an event stream on `res` (the request is already authenticated). */
    attach(opts: AttachOptions): void {
      const { res } = opts;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
        // A stream is its connection's last response: ending it (shutdown, key change) must close
        // the socket too, or an idle keep-alive connection holds the server's drain open.
        connection: "close",
      });
      res.socket?.setNoDelay(true);
      res.write(": connected\n\n");
      if (closed) {
        res.end();
        return;
      }
      const client: Client = {
        agent: opts.agent,
        keyIds: opts.keyIds,
        jti: opts.jti,
        res,
        lastSeq: opts.since,
        expiresAt: opts.expiresAt,
        expiry: undefined,
      };
      let state = agents.get(opts.agent);
      if (!state) {
        state = { clients: new Set(), names: undefined, running: false, again: false, retry: undefined };
        agents.set(opts.agent, state);
      }
      state.clients.add(client);
      const owner = state;
      res.on("close", () => {
        clearTimeout(client.expiry);
        owner.clients.delete(client);
        if (owner.clients.size === 0 && agents.get(client.agent) === owner) {
          clearTimeout(owner.retry);
          agents.delete(client.agent);
        }
      });
      armExpiry(client);
      void sync(opts.agent);
    },

    /** A credential changed (on any replica): agents whose view lists it look again. */
    credentialChanged(name: string): void {
      for (const [agent, state] of agents) {
        if (state.names === undefined || state.names.has(name)) void sync(agent);
      }
    },

    grantChanged(agent: string): void {
      if (agents.has(agent)) void sync(agent);
    },

    /** After a change-feed reset: every connected agent looks again. */
    resyncAll(): void {
      for (const agent of agents.keys()) void sync(agent);
    },

    /**
     * A key changed (revoked, frozen, rotated, scopes narrowed…): every stream resting on it ends,
     * opened with the key itself or with a token minted from it or delegated through it. A client
     * still allowed reconnects and is judged afresh.
     */
    dropKey(keyId: string): void {
      for (const state of agents.values()) for (const c of state.clients) if (c.keyIds.includes(keyId)) c.res.end();
    },

    /** An access token was revoked: the streams it opened end. */
    dropToken(jti: string): void {
      for (const state of agents.values()) for (const c of state.clients) if (c.jti === jti) c.res.end();
    },

    clients(): number {
      let n = 0;
      for (const s of agents.values()) n += s.clients.size;
      return n;
    },

    /** Ends every stream (shutdown: they would otherwise hold the drain for its whole timeout). */
    close(): void {
      closed = true;
      clearInterval(heartbeat);
      for (const state of agents.values()) {
        clearTimeout(state.retry);
        for (const c of state.clients) c.res.end();
      }
    },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export type CredentialEvents = ReturnType<typeof createCredentialEvents>;
