import { Redis } from "ioredis";
import type { Logger } from "../ops/logger.js";
import { type ChangeTransport, describeError } from "./change-message.js";

/** Reconnect after 50 ms, doubling up to 2 s, forever: Redis coming back must be noticed quickly. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * Redis pub/sub. Two connections: a subscribed connection can run nothing else. Publishing never
 * queues: with Redis away an admin change must not wait for it, so a publish fails at once (or
 * after `commandTimeout` on a hung server) and the change travels by reconciliation instead.
 */
export function createRedisTransport(url: string, channel: string, logger: Logger): ChangeTransport {
  const log = logger.child({ component: "cluster", transport: "redis" });
  const pub = new Redis(url, {
    lazyConnect: true,
    retryStrategy,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1000,
    connectionName: "keyward-changes-pub",
  });
  // We subscribe ourselves on every "ready": ioredis's own resubscription gives no signal of when
  // it has taken effect, and reconciliation must run after it has (or it could miss a message).
  const sub = new Redis(url, {
    lazyConnect: true,
    retryStrategy,
    autoResubscribe: false,
    maxRetriesPerRequest: null,
    connectionName: "keyward-changes-sub",
  });
  let closed = false;
  const down = { pub: false, sub: false };

  // Without "error" listeners ioredis reports every failed reconnect on stderr; we log the first
  // of each outage, per connection.
  const onError = (conn: keyof typeof down) => (err: unknown) => {
    if (closed || down[conn]) return;
    down[conn] = true;
    log.warn(
      { connection: conn, err: describeError(err) },
      conn === "sub"
        ? "redis unreachable: changes from other replicas arrive by reconciliation until it is back"
        : "redis unreachable: changes made here reach other replicas by reconciliation until it is back",
    );
  };
  const onUp = (conn: keyof typeof down) => {
    if (down[conn]) log.info({ connection: conn }, "redis reachable again");
    down[conn] = false;
  };
  pub.on("error", onError("pub"));
  sub.on("error", onError("sub"));
  // A drop that heals before any reconnect attempt fails emits no "error"; the subscription is gone
  // all the same (autoResubscribe is off) until the next "ready" subscribes again.
  sub.on("close", () => onError("sub")(new Error("connection closed")));
  const pubReady = new Promise<void>((resolve) => pub.once("ready", () => resolve()));
  let subscribedOnce: () => void = () => {};
  const subReady = new Promise<void>((resolve) => (subscribedOnce = resolve));
  pub.on("ready", () => onUp("pub"));

  return {
    name: "redis",
    async send(payload) {
      await pub.publish(channel, payload);
    },
    start(onMessage, onSubscribed) {
      sub.on("message", (ch: string, payload: string) => {
        if (ch === channel) onMessage(payload);
      });
      sub.on("ready", () => {
        sub.subscribe(channel).then(
          () => {
            onUp("sub");
            subscribedOnce();
            onSubscribed();
          },
          (err: unknown) => {
            onError("sub")(err);
            // Still connected but not subscribed: reconnect, and the next "ready" subscribes again.
            if (!closed) sub.disconnect(true);
          },
        );
      });
      // Failures are retried by retryStrategy and reported through "error".
      sub.connect().catch(() => {});
      pub.connect().catch(() => {});
    },
    ready: () => Promise.all([pubReady, subReady]).then(() => {}),
    async close() {
      closed = true;
      sub.disconnect();
      pub.disconnect();
    },
  };
}
