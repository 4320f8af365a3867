import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { FakeToolsServer } from "../../test-support/tools/fake-tools-server.js";
import { startTools } from "../../test-support/tools/setup.js";
import type { Keyward } from "../client/keyward.js";

/**
 * `ctx.run` must not let a child's own children outlive the call: they hold the user's
 * credentials in their environment, and an open stdout must not keep `run` waiting forever.
 * A grandchild connects to a socket the test holds; the socket closing proves it is gone.
 */

let fake: FakeToolsServer;
let kw: Keyward;
let close: (() => Promise<void>) | undefined;
let server: Server | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
  server?.close();
});

async function grandchildWatch() {
  server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const socket = once(server, "connection").then(([s]) => s as Socket);
  const gone = socket.then((s) => {
    s.resume();
    return once(s, "close");
  });
  return { port, connected: socket, gone };
}

/**
 * A child that starts a grandchild; with `exit` the child leaves as soon as the grandchild has
 * connected (it says so over IPC), so the grandchild is all that is left.
 */
const parentScript = (port: number, exit: boolean, stdio = '"ignore", "inherit", "inherit"') => `
  const { spawn } = require("node:child_process");
  const g = spawn(process.execPath, ["-e", 'require("node:net").connect(${port}, "127.0.0.1").on("connect", () => process.send("up")); setInterval(() => {}, 1e9)'], { stdio: [${stdio}, "ipc"] });
  ${exit ? 'g.on("message", () => { g.disconnect(); g.unref(); process.exit(0); });' : "setInterval(() => {}, 1e9);"}
`;

describe("ctx.run and grandchildren", () => {
  it.each([
    ["a child and its grandchild both still running", false],
    ["a child that exited, leaving a grandchild holding stdout open", true],
  ])("%s: run answers once cancelled, and the grandchild is killed", async (_label, exit) => {
    ({ fake, kw, close } = await startTools());
    fake.granted = new Set(["aliyun_ak"]);
    const alice = fake.addUser("alice", { aliyun_ak: "LTAI5tQx9kPz3WmN7vRb2Yc8" });
    const watch = await grandchildWatch();
    const ctrl = new AbortController();
    let run: Promise<unknown> | undefined;
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        run = ctx.run(process.execPath, ["-e", parentScript(watch.port, exit)]);
        run.catch(() => {});
        await watch.connected;
        ctrl.abort(new Error("user went away"));
        return run;
      },
      { names: ["aliyun_ak"], inject: "env", name: "forker" },
    );
    await expect(tool({}, { userToken: alice, signal: ctrl.signal })).rejects.toThrow("user went away");
    await expect(run).rejects.toThrow("user went away");
    await watch.gone;
  });

  it("a child that exits normally leaving a helper running: run answers, and the helper is killed", async () => {
    ({ fake, kw, close } = await startTools());
    fake.granted = new Set(["aliyun_ak"]);
    const alice = fake.addUser("alice", { aliyun_ak: "LTAI5tQx9kPz3WmN7vRb2Yc8" });
    const watch = await grandchildWatch();
    const tool = kw.tools.withUserCredentials(
      async (_a: object, ctx) => {
        const run = ctx.run(process.execPath, ["-e", parentScript(watch.port, true, '"ignore", "ignore", "ignore"')]);
        await watch.connected;
        return run;
      },
      { names: ["aliyun_ak"], inject: "env", name: "daemonizer" },
    );
    await expect(tool({}, { userToken: alice })).resolves.toMatchObject({ exitCode: 0 });
    await watch.gone;
  });
});
