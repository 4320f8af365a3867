import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createMemoryPermitBank } from "../limits/memory-permit-bank.js";
import type { PermitCounter } from "../limits/permit-bank.js";
import { createIpcPermitBank, servePermitBank } from "./ipc-permit-bank.js";
import { createRpc, type IpcEndpoint, type Rpc } from "./ipc-rpc.js";

/** Two ends of an in-memory channel, delivering asynchronously like IPC (structured clone). */
function channel(): [IpcEndpoint & { disconnect(): void }, IpcEndpoint & { disconnect(): void }] {
  const a = new EventEmitter();
  const b = new EventEmitter();
  const end = (me: EventEmitter, other: EventEmitter) =>
    Object.assign(me, {
      send(message: unknown, cb?: (err: Error | null) => void) {
        const copy = structuredClone(message);
        setImmediate(() => {
          other.emit("message", copy);
          cb?.(null);
        });
        return true;
      },
      disconnect() {
        me.emit("disconnect");
        other.emit("disconnect");
      },
    }) as unknown as IpcEndpoint & { disconnect(): void };
  return [end(a, b), end(b, a)];
}

/** A primary serving one memory bank to `n` workers' IPC banks. */
function workersOn(n: number) {
  const bank = createMemoryPermitBank();
  return Array.from({ length: n }, () => {
    const [workerEnd, primaryEnd] = channel();
    let toWorker: Rpc | undefined;
    const ipc = createIpcPermitBank(() => toPrimary);
    const toPrimary: Rpc = createRpc(workerEnd, ipc.handlers);
    toWorker = createRpc(
      primaryEnd,
      servePermitBank(bank, () => toWorker),
    );
    return { bank: ipc.bank, disconnect: () => workerEnd.disconnect() };
  });
}

const rate = (limit: number): PermitCounter => ({
  lineage: "key_1",
  kind: "rate",
  windowStart: Math.floor(Date.now() / 60_000) * 60_000,
  windowMs: 60_000,
  limit,
});

describe("the primary's permit bank over IPC", () => {
  it("grants two workers together never more than the limit", async () => {
    const [a, b] = workersOn(2) as [ReturnType<typeof workersOn>[0], ReturnType<typeof workersOn>[0]];
    const grants = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).bank.take(rate(100), 7)));
    expect(grants.reduce((sum, g) => sum + g.granted, 0)).toBe(100);
    expect(Math.max(...grants.map((g) => g.used))).toBe(100);
  });

  it("returns given-back permits to the counter that granted them", async () => {
    const [a, b] = workersOn(2) as [ReturnType<typeof workersOn>[0], ReturnType<typeof workersOn>[0]];
    const g = await a.bank.take(rate(10), 10);
    expect(g.granted).toBe(10);
    await a.bank.give(rate(10), 4, g.epoch);
    expect((await b.bank.take(rate(10), 10)).granted).toBe(4);
  });

  it("seeds a quota counter by asking the worker back (the store's count)", async () => {
    const [a, b] = workersOn(2) as [ReturnType<typeof workersOn>[0], ReturnType<typeof workersOn>[0]];
    const quota: PermitCounter = { lineage: "key_2", kind: "quota", windowStart: 0, windowMs: Infinity, limit: 10 };
    let seeds = 0;
    const seed = async () => {
      seeds++;
      return 7;
    };
    expect(await a.bank.take(quota, 5, seed)).toMatchObject({ granted: 3, used: 10 });
    expect((await b.bank.take(quota, 5, seed)).granted).toBe(0);
    expect(seeds).toBe(1);
  });

  it("rejects a take once the primary is gone (the caller applies rate_limit_fallback)", async () => {
    const [a] = workersOn(1) as [ReturnType<typeof workersOn>[0]];
    a.disconnect();
    await expect(a.bank.take(rate(10), 1)).rejects.toThrow(/IPC channel closed/);
  });
});
