import pg from "pg";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { type ChangeTransport, describeError } from "./change-message.js";

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** A listener on a connection that died without a FIN would wait forever: probe it now and then. */
const PROBE_EVERY_MS = 10_000;

/**
 * PostgreSQL LISTEN/NOTIFY, for clusters without Redis. Sending goes through the store's pool;
 * listening needs a connection of its own (a pooled one would be handed to other work), which is
 * reopened with backoff whenever it fails.
 */
export function createPgNotifyTransport(url: string, channel: string, db: Db, logger: Logger): ChangeTransport {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error("invalid channel name");
  const log = logger.child({ component: "cluster", transport: "postgres" });
  let client: pg.Client | undefined;
  let closed = false;
  let down = false;
  let backoff = MIN_BACKOFF_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let listening: () => void = () => {};
  const firstListen = new Promise<void>((resolve) => (listening = resolve));

  function connect(onMessage: (payload: string) => void, onSubscribed: () => void): void {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, keepAlive: true });
    client = c;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      clearInterval(probeTimer);
      c.end().catch(() => {});
      if (client === c) client = undefined;
      if (closed) return;
      if (!down) {
        down = true;
        log.warn(
          { err: describeError(err) },
          "change listener lost its PostgreSQL connection: reconnecting; changes arrive by reconciliation meanwhile",
        );
      }
      retryTimer = setTimeout(() => connect(onMessage, onSubscribed), backoff);
      retryTimer.unref();
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
    c.on("error", fail);
    c.on("end", () => fail(new Error("connection ended")));
    c.on("notification", (n) => {
      if (n.channel === channel && n.payload !== undefined) onMessage(n.payload);
    });
    (async () => {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (failed) return;
      backoff = MIN_BACKOFF_MS;
      if (down) log.info("change listener reconnected");
      down = false;
      probeTimer = setInterval(() => {
        const timeout = new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("probe timed out")), 5000).unref(),
        );
        Promise.race([c.query("SELECT 1"), timeout]).catch(fail);
      }, PROBE_EVERY_MS);
      probeTimer.unref();
      listening();
      onSubscribed();
    })().catch(fail);
  }

  return {
    name: "postgres",
    async send(payload) {
      await db.query("SELECT pg_notify($1, $2)", [channel, payload]);
    },
    start(onMessage, onSubscribed) {
      connect(onMessage, onSubscribed);
    },
    ready: () => firstListen,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(probeTimer);
      await client?.end().catch(() => {});
    },
  };
}
