import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { type ChangeFeed, createLocalChangeFeed } from "./change-feed.js";
import { createChangesStore } from "./changes-store.js";
import { createClusterChangeFeed } from "./cluster-feed.js";
import { createPgNotifyTransport } from "./pg-notify-transport.js";
import { createRedisTransport } from "./redis-transport.js";

/**
 * The change feed for this configuration: on PostgreSQL, replicas tell each other through Redis
 * pub/sub when `redis_url` is set, else through LISTEN/NOTIFY, and reconcile from the change log
 * either way. On SQLite there is one process per file, so the local feed is enough.
 */
export async function openChangeFeed(deps: {
  db: Db;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  clock: Clock;
  logger: Logger;
  reconcileIntervalMs: number;
  maxStalenessMs: number;
}): Promise<ChangeFeed> {
  const { db, databaseUrl, redisUrl, logger } = deps;
  if (db.engine !== "postgres" || databaseUrl === undefined) return createLocalChangeFeed();
  const store = createChangesStore(db);
  const id = await store.clusterId();
  const transport = redisUrl
    ? createRedisTransport(redisUrl, `keyward:changes:${id}`, logger)
    : createPgNotifyTransport(databaseUrl, `keyward_changes_${id}`, db, logger);
  const feed = createClusterChangeFeed({
    store,
    transport,
    clock: deps.clock,
    logger,
    reconcileIntervalMs: deps.reconcileIntervalMs,
    maxStalenessMs: deps.maxStalenessMs,
  });
  await feed.start();
  logger.info(
    { transport: transport.name, reconcile_interval_ms: deps.reconcileIntervalMs },
    "replica change feed started",
  );
  return feed;
}
