import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { AgentView, AgentViews, ViewEntry } from "./agent-view.js";
import { createCredentialEvents } from "./credential-events.js";

/**
 * The SSE hub on its own: a fake response records what each client was sent and how much it has
 * not read yet, and a fake view source counts store reads.
 */

class FakeResponse extends EventEmitter {
  written = "";
  /** Bytes the client has not read: grows with every write, like a stalled socket. */
  writableLength = 0;
  destroyed = false;
  writableEnded = false;
  constructor(private readonly reads: boolean) {
    super();
  }
  writeHead() {
    return this;
  }
  write(chunk: string) {
    this.written += chunk;
    if (!this.reads) this.writableLength += chunk.length;
    return this.reads;
  }
  end() {
    this.writableEnded = true;
    this.emit("close");
  }
  destroy() {
    this.destroyed = true;
    this.emit("close");
  }
}

const entry = (name: string, seq: number, readable = true, version = 1): ViewEntry => ({
  name,
  seq,
  readable,
  version: readable ? version : null,
  value: readable ? `value-${name}` : null,
  expiresAt: null,
  unavailable: null,
});

function viewOf(entries: ViewEntry[]): AgentView {
  return {
    agent: "bot",
    cursor: Math.max(0, ...entries.map((e) => e.seq)),
    entries,
    names: new Set(entries.map((e) => e.name)),
    staleAt: Number.POSITIVE_INFINITY,
    full: () => {
      throw new Error("not used");
    },
    since: () => {
      throw new Error("not used");
    },
  };
}

function source(initial: ViewEntry[]) {
  let current = viewOf(initial);
  let loads = 0;
  const views = {
    get: async () => {
      loads++;
      return current;
    },
  } as unknown as AgentViews;
  return {
    views,
    set: (entries: ViewEntry[]) => {
      current = viewOf(entries);
    },
    loads: () => loads,
  };
}

const hubs: Array<{ close(): void }> = [];
afterEach(() => {
  for (const h of hubs.splice(0)) h.close();
});

function hub(views: AgentViews, maxBufferBytes?: number) {
  const h = createCredentialEvents({
    views,
    clock: frozenClock(),
    logger: silentLogger(),
    heartbeatMs: 60_000,
    ...(maxBufferBytes ? { maxBufferBytes } : {}),
  });
  hubs.push(h);
  return h;
}

const attach = (h: ReturnType<typeof hub>, since: number, reads = true) => {
  const res = new FakeResponse(reads);
  h.attach({
    agent: "bot",
    keyIds: ["key_1"],
    jti: undefined,
    res: res as unknown as ServerResponse,
    since,
    expiresAt: null,
  });
  return res;
};
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("credential event hub", () => {
  it("replays in clock order, one id per change, removed and changed alike", async () => {
    const src = source([entry("a", 3), entry("b", 5, false), entry("c", 5), entry("d", 7)]);
    const h = hub(src.views);
    const res = attach(h, 2);
    await settle();
    expect(res.written).toBe(
      [
        ": connected\n\n",
        'event: changed\ndata: {"name":"a","version":1}\nid: 3\n\n',
        'event: removed\ndata: {"name":"b"}\n\n',
        'event: changed\ndata: {"name":"c","version":1}\nid: 5\n\n',
        'event: changed\ndata: {"name":"d","version":1}\nid: 7\n\n',
      ].join(""),
    );
  });

  it("loads an agent's view once per change, however many of its clients are connected", async () => {
    const src = source([entry("a", 1)]);
    const h = hub(src.views);
    const clients = Array.from({ length: 50 }, () => attach(h, 1));
    await settle();
    const before = src.loads();
    expect(before).toBeLessThanOrEqual(2); // the first attach, and at most one more for the rest
    src.set([entry("a", 2, true, 2)]);
    h.credentialChanged("a");
    h.credentialChanged("a");
    await settle();
    expect(src.loads() - before).toBeLessThanOrEqual(2);
    for (const c of clients) expect(c.written).toContain('data: {"name":"a","version":2}\nid: 2\n\n');
    // A change to a name this agent's view does not list costs nothing.
    const loads = src.loads();
    h.credentialChanged("unrelated");
    await settle();
    expect(src.loads()).toBe(loads);
  });

  it("drops a client that stops reading once its backlog passes the limit; the others go on", async () => {
    const src = source([entry("a", 1)]);
    const h = hub(src.views, 200);
    const stalled = attach(h, 1, false);
    const healthy = attach(h, 1, true);
    await settle();
    for (let v = 2; v < 10; v++) {
      src.set([entry("a", v, true, v)]);
      h.credentialChanged("a");
      await settle();
    }
    expect(stalled.destroyed).toBe(true);
    expect(healthy.destroyed).toBe(false);
    expect(healthy.written).toContain('"version":9}\nid: 9');
    expect(h.clients()).toBe(1);
  });

  it("ends the streams of a key that changed, and every stream on close", async () => {
    const src = source([entry("a", 1)]);
    const h = hub(src.views);
    const res = attach(h, 1);
    await settle();
    h.dropKey("key_other");
    expect(res.writableEnded).toBe(false);
    h.dropKey("key_1");
    expect(res.writableEnded).toBe(true);
    const later = attach(h, 1);
    h.close();
    expect(later.writableEnded).toBe(true);
    expect(h.clients()).toBe(0);
  });
});
