import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createMemoryPermitBank } from "../limits/memory-permit-bank.js";
import { parseCounter, servePermitBank } from "./ipc-permit-bank.js";
import { createRpc, type IpcEndpoint, MAX_PENDING_CALLS } from "./ipc-rpc.js";

/** An end whose messages go nowhere (a side that never answers), recording what was sent. */
function silent(): IpcEndpoint & { sent: unknown[] } {
  const e = new EventEmitter() as EventEmitter & { sent: unknown[] };
  e.sent = [];
  return Object.assign(e, {
    send(m: unknown) {
      e.sent.push(m);
      return true;
    },
  }) as unknown as IpcEndpoint & { sent: unknown[] };
}

describe("IPC calls that cannot be answered", () => {
  it("a call without an answer rejects at its timeout instead of waiting forever", async () => {
    const rpc = createRpc(silent(), {});
    await expect(rpc.call("take", {}, 20)).rejects.toThrow("no answer to take within 20 ms");
  });

  it("pending calls are bounded", async () => {
    const rpc = createRpc(silent(), {});
    const pending = Array.from({ length: MAX_PENDING_CALLS }, () => rpc.call("x", null, 60_000).catch(() => "closed"));
    await expect(rpc.call("x", null, 60_000)).rejects.toThrow("too many pending IPC calls");
    rpc.close("test over");
    expect(new Set(await Promise.all(pending))).toEqual(new Set(["closed"]));
  });

  it("answers an unknown method with an error, and ignores messages that are not Keyward's", async () => {
    const end = silent();
    createRpc(end, {});
    (end as unknown as EventEmitter).emit("message", { kw: 1, id: 3, m: "__proto__", b: null });
    (end as unknown as EventEmitter).emit("message", { cmd: "NODE_CLUSTER", id: 4, m: "x" });
    await new Promise((r) => setImmediate(r));
    expect(end.sent).toEqual([{ kw: 1, id: 3, e: "unknown method __proto__" }]);
  });
});

describe("what a worker may ask of the primary's bank", () => {
  const good = { lineage: "key_1", kind: "rate", windowStart: 0, windowMs: 1000, limit: 5 };

  it.each([
    ["no lineage", { ...good, lineage: "" }],
    ["a lineage past the bound", { ...good, lineage: "k".repeat(201) }],
    ["an unknown kind", { ...good, kind: "burst" }],
    ["a negative limit", { ...good, limit: -1 }],
    ["a fractional window start", { ...good, windowStart: 0.5 }],
    ["an endless rate window", { ...good, windowMs: Infinity }],
    ["a zero window", { ...good, windowMs: 0 }],
    ["not an object", "key_1"],
  ])("refuses a counter with %s", (_what, counter) => {
    expect(() => parseCounter(counter)).toThrow("malformed permit counter");
  });

  it("takes a quota in total (windowMs Infinity) and a lineage at the bound", () => {
    expect(parseCounter({ ...good, kind: "quota", windowMs: Infinity }).windowMs).toBe(Infinity);
    expect(parseCounter({ ...good, lineage: "k".repeat(200) }).lineage).toHaveLength(200);
  });

  it("refuses negative or fractional counts, and a give without an epoch", async () => {
    const handlers = servePermitBank(createMemoryPermitBank(), () => undefined);
    await expect(Promise.resolve().then(() => handlers.take?.({ counter: good, want: -3 }))).rejects.toThrow(
      "malformed permit count",
    );
    await expect(Promise.resolve().then(() => handlers.take?.({ counter: good, want: 1.5 }))).rejects.toThrow(
      "malformed permit count",
    );
    await expect(Promise.resolve().then(() => handlers.give?.({ counter: good, count: 1 }))).rejects.toThrow(
      "malformed permit epoch",
    );
  });
});
