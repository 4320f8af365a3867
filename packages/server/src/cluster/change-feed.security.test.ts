import net from "node:net";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { describeError } from "./change-message.js";
import { createPgNotifyTransport } from "./pg-notify-transport.js";
import { createRedisTransport } from "./redis-transport.js";

/** A logger whose lines a test can read, and a promise for the first line matching `pattern`. */
function capturingLogger() {
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      for (const w of waiters.splice(0)) w();
      done();
    },
  });
  const logger = createLogger({ level: "debug", destination });
  return {
    logger,
    lines,
    async line(pattern: string): Promise<string> {
      for (;;) {
        const hit = lines.find((l) => l.includes(pattern));
        if (hit) return hit;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

/** A port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("the change feed's connections never leak their credentials", () => {
  it("never logs the password of a connection URL", () => {
    const err = Object.assign(new Error("connect to redis://user:s3cret-canary@10.0.0.1:6379 failed"), {
      code: "ECONNREFUSED",
    });
    const described = describeError(err);
    expect(JSON.stringify(described)).not.toContain("s3cret-canary");
    expect(described).toEqual({ code: "ECONNREFUSED", reason: "connect to redis://[redacted]@10.0.0.1:6379 failed" });
    expect(JSON.stringify(describeError(new Error("postgres://kw:pw-canary@db/x")))).not.toContain("pw-canary");
  });

  it("logs an unreachable Redis without its password, and keeps retrying without throwing", async () => {
    const cap = capturingLogger();
    const port = await closedPort();
    const t = createRedisTransport(
      `redis://keyward:redis-canary-pw@127.0.0.1:${port}`,
      "keyward:changes:t",
      cap.logger,
    );
    t.start(
      () => {},
      () => {},
    );
    const line = await cap.line("redis unreachable");
    expect(line).toContain("ECONNREFUSED");
    await expect(t.send("{}")).rejects.toThrow();
    await t.close();
    expect(cap.lines.join("")).not.toContain("redis-canary-pw");
  });

  it("logs an unreachable PostgreSQL listener without its password", async () => {
    const cap = capturingLogger();
    const port = await closedPort();
    const unused = {} as Db;
    const t = createPgNotifyTransport(
      `postgres://keyward:pg-canary-pw@127.0.0.1:${port}/keyward`,
      "keyward_changes_t",
      unused,
      cap.logger,
    );
    t.start(
      () => {},
      () => {},
    );
    const line = await cap.line("change listener lost its PostgreSQL connection");
    expect(line).toContain("ECONNREFUSED");
    await t.close();
    expect(cap.lines.join("")).not.toContain("pg-canary-pw");
  });
});
