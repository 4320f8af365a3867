import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "./tcp-relay.js";

// The relay the outage tests rely on: cut is a refusal, pause is silence (no bytes, no close, no
// error either way) until resume, which delivers what waited.
describe("tcp relay", () => {
  let echo: net.Server;
  let relay: Relay;

  beforeAll(async () => {
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    relay = await startRelay({ host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port });
  });
  afterAll(async () => {
    await relay.close();
    await new Promise((r) => echo.close(r));
  });

  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(relay.port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
  const next = (s: net.Socket) => new Promise<string>((r) => s.once("data", (d) => r(String(d))));
  const quiet = (s: net.Socket, ms: number) =>
    new Promise<boolean>((r) => {
      const t = setTimeout(() => r(true), ms);
      s.once("data", () => {
        clearTimeout(t);
        r(false);
      });
    });

  it("pause holds bytes both ways and new connections, resume delivers them", async () => {
    const s = await connect();
    s.write("a");
    expect(await next(s)).toBe("a");

    relay.pause();
    s.write("b");
    expect(await quiet(s, 150)).toBe(true);
    const late = await connect(); // accepted: a stall is not a refusal
    late.write("c");
    expect(await quiet(late, 100)).toBe(true);

    const got = [next(s), next(late)];
    relay.resume();
    expect(await Promise.all(got)).toEqual(["b", "c"]);
    s.destroy();
    late.destroy();
  });

  it("cut closes open connections and refuses new ones; restore accepts again", async () => {
    const s = await connect();
    const closed = new Promise((r) => s.once("close", r));
    await relay.cut();
    await closed;
    await expect(connect()).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await relay.restore();
    const again = await connect();
    again.write("d");
    expect(await next(again)).toBe("d");
    again.destroy();
  });
});
