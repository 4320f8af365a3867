import { describe, expect, it } from "vitest";
import { AuditQueue } from "./audit-queue.js";
import type { AuditError, AuditEvent } from "./errors.js";
import type { ToolsApi } from "./tools-api.js";

/** A Keyward that takes audit records and answers none until `answer()`; after that, all at once. */
function silentKeyward() {
  const waiting: Array<() => void> = [];
  const stored: AuditEvent[] = [];
  let answering = false;
  const api: ToolsApi = {
    userCredentials: () => Promise.reject(new Error("not used")),
    audit: (event) =>
      new Promise<void>((resolve) => {
        const done = () => {
          stored.push(event);
          resolve();
        };
        if (answering) done();
        else waiting.push(done);
      }),
  };
  return {
    api,
    waiting,
    stored,
    answer() {
      answering = true;
      for (const done of waiting.splice(0)) done();
    },
  };
}

const event = (i: number): AuditEvent => ({ tool: `t${i}`, user: "user:alice", outcome: "ok", redactions: 0 });

describe("AuditQueue while Keyward does not answer", () => {
  it("keeps a few requests in flight and a bounded backlog; past it each record is dropped and reported with the count", async () => {
    const k = silentKeyward();
    const queue = new AuditQueue(k.api, { inFlight: 4, backlog: 100 });
    const errors: AuditError[] = [];
    for (let i = 0; i < 250; i++) queue.send(event(i), (e) => errors.push(e));
    expect(k.waiting).toHaveLength(4);
    expect(queue.dropped).toBe(146);
    await Promise.resolve();
    expect(errors).toHaveLength(146);
    expect(errors[0]).toMatchObject({ code: "audit_dropped", event: event(104) });
    expect(errors.at(-1)?.message).toContain("146 dropped so far");

    // Once Keyward answers, the backlog drains in order and records are taken again.
    k.answer();
    await queue.flush();
    expect(k.stored.map((e) => e.tool)).toEqual(Array.from({ length: 104 }, (_, i) => `t${i}`));
    queue.send(event(999), (e) => errors.push(e));
    await queue.flush();
    expect(k.stored).toHaveLength(105);
    expect(errors).toHaveLength(146);
  });

  it("close() sends the whole backlog at once instead of a few at a time", async () => {
    const k = silentKeyward();
    const queue = new AuditQueue(k.api, { inFlight: 2, backlog: 50 });
    for (let i = 0; i < 30; i++) queue.send(event(i), () => {});
    expect(k.waiting).toHaveLength(2);
    const closed = queue.close();
    expect(k.waiting).toHaveLength(30);
    k.answer();
    await closed;
    expect(k.stored).toHaveLength(30);
  });
});
