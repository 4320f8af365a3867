import { KeywardError } from "../errors.js";
import { Backoff } from "./backoff.js";
import type { CredentialSet } from "./credential-set.js";
import type { CredentialsApi, CredentialsPage } from "./credentials-api.js";
import { runEventStream } from "./event-stream.js";
import type { ResolvedOptions } from "./options.js";
import type { SseEvent } from "./sse-parser.js";

/** After the server said it has no event stream, poll for this long before asking again. */
const STREAM_RETRY_MS = 5 * 60_000;

export interface FreshnessDeps {
  opts: ResolvedOptions;
  api: CredentialsApi;
  set: CredentialSet;
  closed: AbortSignal;
  /** A successful answer or a heartbeat arrived. */
  contact(): void;
  /** A page changed the set (for the disk cache). */
  changed(): void;
  error(err: KeywardError): void;
}

/**
 * Keeps the set fresh. The event stream is the main path: `changed` → one `?since=` request for
 * what changed. While the stream is down, polling (`?since=` with `If-None-Match`) takes over.
 * Every (re)connect of the stream is followed by a catch-up `?since=` request, so a change made
 * while it was down (or between the first load and the stream opening) is never missed, whether
 * or not the server replays from `Last-Event-ID`. Each path retries with its own backoff.
 */
export class Freshness {
  readonly #d: FreshnessDeps;
  #lastEventId = "";
  /**
   * The newest event id of the live stream, as a number: an answer behind it came from a server
   * (another worker or replica behind a load balancer) that has not applied that change yet.
   */
  #eventCursor: number | undefined;
  #behindTimer: unknown;
  readonly #behindBackoff: Backoff;
  #streamLive = false;
  #loop: Promise<void> | undefined;
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  /** The sync whose failure #syncSoon already retries. */
  #watched: Promise<void> | undefined;
  #syncRetryTimer: unknown;
  #pollTimer: unknown;
  readonly #waits = new Set<() => void>();
  readonly #streamBackoff: Backoff;
  readonly #syncBackoff: Backoff;
  readonly #pollBackoff: Backoff;

  constructor(deps: FreshnessDeps) {
    this.#d = deps;
    const { backoffBaseMs, backoffCapMs, random } = deps.opts;
    this.#streamBackoff = new Backoff(backoffBaseMs, backoffCapMs, random);
    this.#syncBackoff = new Backoff(backoffBaseMs, backoffCapMs, random);
    this.#pollBackoff = new Backoff(backoffBaseMs, backoffCapMs, random);
    this.#behindBackoff = new Backoff(Math.min(backoffBaseMs, BEHIND_RETRY_MS), backoffCapMs, random);
  }

  start(): void {
    this.#loop ??= this.#runStream();
  }

  /**
   * Fetches what changed since the cursor. Calls made while a fetch runs join it and make it run
   * once more, so whoever awaits sees every change made before the call.
   */
  sync(): Promise<void> {
    if (this.#syncing !== undefined) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    const run = async () => {
      try {
        do {
          this.#syncAgain = false;
          await this.#syncOnce();
        } while (this.#syncAgain && !this.#d.closed.aborted);
      } finally {
        this.#syncing = undefined;
      }
    };
    this.#syncing = run();
    return this.#syncing;
  }

  /** Stops every timer and connection; resolves once nothing runs any more. */
  async close(): Promise<void> {
    const { clock } = this.#d.opts;
    clock.clearTimeout(this.#syncRetryTimer);
    clock.clearTimeout(this.#pollTimer);
    clock.clearTimeout(this.#behindTimer);
    for (const wake of [...this.#waits]) wake();
    await this.#loop;
    await this.#syncing?.catch(() => {});
  }

  async #syncOnce(): Promise<void> {
    const { api, set } = this.#d;
    const since = set.cursor;
    let page: CredentialsPage | undefined;
    let full = since === undefined;
    try {
      page = await api.fetchCredentials({ since, etag: set.etag });
    } catch (err) {
      // A cursor the server no longer knows (another server, a restored database): start over.
      const rejected = err instanceof KeywardError && (err.status === 400 || err.status === 410);
      if (since === undefined || !rejected) throw err;
      page = await api.fetchCredentials({});
      full = true;
    }
    this.#d.contact();
    if (page !== undefined) {
      if (set.apply(page, full)) this.#d.changed();
      for (const u of page.unavailable) this.#d.error(new KeywardError(u.code, u.message));
    }
    this.#unlessBehind();
  }

  /**
   * The stream announced a change this answer does not hold yet: ask again, with backoff, until an
   * answer catches up with the stream. Said to nobody: it is not a fault, only a server behind.
   */
  #unlessBehind(): void {
    const cursor = asCursor(this.#d.set.cursor);
    if (this.#eventCursor === undefined || cursor === undefined || cursor >= this.#eventCursor) {
      this.#behindBackoff.succeed();
      return;
    }
    if (this.#behindTimer !== undefined || this.#d.closed.aborted) return;
    this.#behindTimer = this.#d.opts.clock.setTimeout(() => {
      this.#behindTimer = undefined;
      this.#syncSoon();
    }, this.#behindBackoff.fail());
  }

  /** A sync whose failure is retried with backoff until one succeeds. */
  #syncSoon(): void {
    const running = this.sync();
    if (running === this.#watched) return; // its outcome is handled once, not per event
    this.#watched = running;
    running.then(
      () => this.#syncBackoff.succeed(),
      (err: unknown) => {
        if (this.#d.closed.aborted) return;
        this.#d.error(asKeywardError(err));
        if (this.#syncRetryTimer !== undefined) return;
        this.#syncRetryTimer = this.#d.opts.clock.setTimeout(() => {
          this.#syncRetryTimer = undefined;
          this.#syncSoon();
        }, this.#syncBackoff.fail());
      },
    );
  }

  async #runStream(): Promise<void> {
    const { opts, api, closed } = this.#d;
    while (!closed.aborted) {
      const end = await runEventStream(
        {
          api,
          clock: opts.clock,
          heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
          url: opts.url,
          closed,
          lastEventId: this.#lastEventId,
          limits: opts.limits,
        },
        {
          open: () => {
            this.#streamLive = true;
            // Ids of an earlier connection may be another server's: this stream's own count.
            this.#eventCursor = undefined;
            this.#stopPolling();
            this.#d.contact();
            this.#syncSoon();
          },
          data: () => this.#d.contact(),
          event: (e) => this.#onEvent(e),
        },
      );
      this.#streamLive = false;
      this.#lastEventId = end.lastEventId;
      if (closed.aborted || end.kind === "closed") return;
      // A stream cut for an oversized line or event did deliver bytes, but it is a fault that
      // would recur at once: it backs off like any failure instead of reconnecting at the base delay.
      if (end.gotData && end.error?.code !== "response_too_large") this.#streamBackoff.succeed();
      this.#startPolling();
      if (end.kind === "unavailable") {
        await this.#wait(STREAM_RETRY_MS);
        continue;
      }
      if (end.error !== undefined) this.#d.error(end.error);
      await this.#wait(this.#streamBackoff.fail());
    }
  }

  #onEvent(e: SseEvent): void {
    if (e.type !== "changed" && e.type !== "removed") return; // unknown types: newer servers
    let data: { name?: unknown; version?: unknown } = {};
    try {
      data = JSON.parse(e.data);
    } catch {
      // Unreadable: the catch-up below still brings whatever changed.
    }
    if (e.type === "changed") {
      const held = typeof data.name === "string" ? this.#d.set.entries.get(data.name) : undefined;
      if (held !== undefined && held.version === data.version) return;
    } else if (typeof data.name === "string") {
      // Dropped at once; the sync below moves the cursor past the removal, and undoes a response
      // that was already in flight with the old value.
      this.#d.set.remove(data.name);
    }
    const seq = asCursor(e.lastEventId);
    if (seq !== undefined && (this.#eventCursor === undefined || seq > this.#eventCursor)) this.#eventCursor = seq;
    this.#syncSoon();
  }

  #startPolling(): void {
    if (this.#pollTimer !== undefined || this.#streamLive || this.#d.closed.aborted) return;
    this.#pollTimer = this.#d.opts.clock.setTimeout(() => this.#poll(), this.#d.opts.pollIntervalMs);
  }

  #stopPolling(): void {
    this.#d.opts.clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  async #poll(): Promise<void> {
    this.#pollTimer = undefined;
    let delay = this.#d.opts.pollIntervalMs;
    try {
      await this.sync();
      this.#pollBackoff.succeed();
    } catch (err) {
      if (this.#d.closed.aborted) return;
      this.#d.error(asKeywardError(err));
      delay = this.#pollBackoff.fail();
    }
    if (this.#streamLive || this.#d.closed.aborted || this.#pollTimer !== undefined) return;
    this.#pollTimer = this.#d.opts.clock.setTimeout(() => this.#poll(), delay);
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#d.closed.aborted) return resolve();
      const wake = () => {
        this.#d.opts.clock.clearTimeout(handle);
        this.#waits.delete(wake);
        resolve();
      };
      const handle = this.#d.opts.clock.setTimeout(wake, ms);
      this.#waits.add(wake);
    });
  }
}

/** The first wait before asking again when an answer is behind the stream (then backing off). */
const BEHIND_RETRY_MS = 50;

/** A cursor or event id as the server writes them (decimal digits), else undefined (not compared). */
function asCursor(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function asKeywardError(err: unknown): KeywardError {
  return err instanceof KeywardError
    ? err
    : new KeywardError("invalid_response", err instanceof Error ? err.message : String(err), { cause: err });
}
