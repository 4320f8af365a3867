import type { PermitBank, PermitCounter, PermitGrant } from "../limits/permit-bank.js";
import type { Rpc, RpcHandler } from "./ipc-rpc.js";

/**
 * How long a worker waits for the primary's answer before the take counts as failed (the caller
 * then applies `rate_limit_fallback`, as when Redis does not answer). The primary answers from
 * memory; only a primary that is stuck or gone takes this long.
 */
export const BANK_TIMEOUT_MS = 1000;
/** A quota counter's seed is read from this worker's store: a slower answer. */
const SEED_TIMEOUT_MS = 5000;
/** Seeds asked for but not yet answered, per worker (one per pending take at most). */
const MAX_SEEDS = 10_000;

/**
 * A worker's PermitBank when `keyward serve --workers N` runs without Redis: every take and give
 * is a message to the primary, which answers from the one in-memory bank it holds for all its
 * workers (`servePermitBank`). A quota counter the primary has not seen asks back for its seed,
 * which this worker reads from the store (`seed()`), so quotas stay exact across restarts.
 *
 * The bank is reached once per lease, not per request (limits/leased-limits.ts): an IPC round trip
 * (tens of µs) per batch. A worker that dies holding leases loses them (the bank's invariant:
 * lost, never granted twice).
 */
export function createIpcPermitBank(primary: () => Rpc | undefined) {
  const seeds = new Map<number, () => Promise<number>>();
  let nextSeed = 1;
  let closed = false;

  function rpc(): Rpc {
    const r = primary();
    if (!r || closed) throw new Error("the primary process is not reachable");
    return r;
  }

  const bank: PermitBank = {
    async take(counter: PermitCounter, want: number, seed?: () => Promise<number>): Promise<PermitGrant> {
      const channel = rpc();
      let seedId = 0;
      if (seed) {
        if (seeds.size >= MAX_SEEDS) throw new Error("too many pending quota seeds");
        seedId = nextSeed++;
        seeds.set(seedId, seed);
      }
      try {
        return parseGrant(
          await channel.call("take", { counter, want, seed: seedId }, BANK_TIMEOUT_MS + SEED_TIMEOUT_MS),
        );
      } finally {
        if (seedId) seeds.delete(seedId);
      }
    },
    async give(counter: PermitCounter, count: number, epoch: string): Promise<void> {
      if (!(count > 0)) return;
      await rpc().call("give", { counter, count, epoch }, BANK_TIMEOUT_MS);
    },
    async close(): Promise<void> {
      closed = true;
    },
  };

  /** The primary asks back for a quota counter's seed: runs the `seed()` its take passed. */
  const seedHandler: RpcHandler = async (body) => {
    const fn = seeds.get(Number((body as { seed?: unknown } | null)?.seed));
    if (!fn) throw new Error("no such seed");
    return fn();
  };
  return { bank, handlers: { seed: seedHandler } };
}

function parseGrant(r: unknown): PermitGrant {
  const g = r as Partial<PermitGrant> | null;
  if (typeof g?.granted !== "number" || typeof g.used !== "number" || typeof g.epoch !== "string") {
    throw new Error("malformed permit grant");
  }
  return { granted: g.granted, used: g.used, epoch: g.epoch };
}

/** A lineage is a key id: this is far beyond any, and bounds what one counter's name costs. */
const MAX_LINEAGE = 200;

/**
 * What a worker may send as a counter; anything else is refused. The channel uses node's
 * "advanced" serialization (structured clone), so a quota in total keeps `windowMs: Infinity`.
 */
export function parseCounter(raw: unknown): PermitCounter {
  const c = raw as Partial<PermitCounter> | null;
  const windowMs = c?.windowMs;
  if (
    typeof c?.lineage !== "string" ||
    c.lineage.length === 0 ||
    c.lineage.length > MAX_LINEAGE ||
    (c.kind !== "rate" && c.kind !== "quota") ||
    !Number.isSafeInteger(c.windowStart) ||
    typeof windowMs !== "number" ||
    !(windowMs > 0) ||
    !(Number.isSafeInteger(windowMs) || (windowMs === Number.POSITIVE_INFINITY && c.kind === "quota")) ||
    !Number.isSafeInteger(c.limit) ||
    (c.limit as number) < 0
  ) {
    throw new Error("malformed permit counter");
  }
  return { lineage: c.lineage, kind: c.kind, windowStart: c.windowStart as number, windowMs, limit: c.limit as number };
}

/**
 * The primary's side: the RPC handlers one worker's channel gets, answering from `bank` (the one
 * in-memory bank shared by every worker). `worker()` is that worker's channel, for asking its seed.
 */
export function servePermitBank(bank: PermitBank, worker: () => Rpc | undefined): Record<string, RpcHandler> {
  const count = (n: unknown) => {
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw new Error("malformed permit count");
    return n as number;
  };
  return {
    take(body) {
      const b = body as { counter?: unknown; want?: unknown; seed?: unknown } | null;
      const counter = parseCounter(b?.counter);
      const seedId = Number(b?.seed ?? 0);
      const seed =
        seedId > 0
          ? async () => {
              const channel = worker();
              if (!channel) throw new Error("the worker is gone");
              const n = await channel.call("seed", { seed: seedId }, SEED_TIMEOUT_MS);
              return count(n);
            }
          : undefined;
      return bank.take(counter, count(b?.want), seed);
    },
    give(body) {
      const b = body as { counter?: unknown; count?: unknown; epoch?: unknown } | null;
      if (typeof b?.epoch !== "string" || b.epoch.length > 100) throw new Error("malformed permit epoch");
      return bank.give(parseCounter(b.counter), count(b.count), b.epoch);
    },
  };
}
