import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import net from "node:net";

/** Why a test that runs its own redis-server is skipped here, or undefined when it can run. */
export const redisServerSkip: string | undefined =
  spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0
    ? undefined
    : "redis-server is not installed";

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A redis-server of the test's own, on a free loopback port, keeping nothing on disk (like CI's):
 * the test can kill it (all data lost) and start it again on the same port.
 */
export async function startRedisServer() {
  const port = await freePort();
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    if (child && child.exitCode === null && child.signalCode === null) return;
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = proc;
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d;
        if (out.includes("Ready to accept connections")) {
          proc.stdout?.off("data", onData);
          proc.stdout?.resume();
          resolve();
        }
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", (d: Buffer) => {
        out += d;
      });
      proc.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
    });
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    /** SIGKILL: the server and everything it held are gone at once. */
    async kill(): Promise<void> {
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGKILL");
      });
    },
    /** SIGSTOP / SIGCONT: a Redis that keeps its connections open but stops answering. */
    pause(): void {
      child?.kill("SIGSTOP");
    },
    resume(): void {
      child?.kill("SIGCONT");
    },
    /** Starts again on the same port, empty (nothing to do while it runs). */
    restart: start,
    async close(): Promise<void> {
      await this.kill();
    },
  };
}
