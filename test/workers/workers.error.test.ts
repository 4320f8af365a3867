// `keyward serve --workers`: values that are not a positive integer, a worker that cannot start,
// and workers that keep dying.
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { serve, spawnServe, stopAll, until } from "./harness.js";

afterAll(stopAll);

describe("keyward serve --workers, bad input", () => {
  it.each(["0", "abc", "1.5", "=-1", "", "2x", "999999999999"])(
    "--workers %j stops the start with one line",
    async (value) => {
      const p = spawnServe(value.startsWith("=") ? [`--workers${value}`] : ["--workers", value]);
      expect(await p.exited).toBe(1);
      expect(p.stdout()).toBe("");
      expect(p.stderr()).toMatch(/^keyward: --workers must be a whole number from 1 to 256 \(got "[^\n]*"\)\n$/);
    },
  );

  it("--workers -1 (read as a missing value) stops the start with one line too", async () => {
    const p = spawnServe(["--workers", "-1"]);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toMatch(/^keyward: [^\n]*--workers[^\n]*\n$/);
  });

  it("--workers 1 is the single process of before: no worker processes", async () => {
    const s = await serve(["--workers", "1"]);
    expect(s.workerPids()).toEqual([]);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  it("sqlite::memory: runs one process by default, and --workers 2 on it stops with one line", async () => {
    const memory = { KEYWARD_DATABASE_URL: "sqlite::memory:" };
    const s = await serve([], memory);
    expect(s.workerPids()).toEqual([]);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    const p = spawnServe(["--workers", "2"], memory);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toBe("keyward: --workers above 1 needs a database file or PostgreSQL, not sqlite::memory:\n");
  });

  it("a worker that cannot start stops the whole start with its one line", async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const p = spawnServe(["--workers", "2", "--port", String(port)]);
      expect(await p.exited).toBe(1);
      expect(p.stdout()).toBe("");
      // Log lines (JSON) may come first; the command's own output is that one line.
      const plain = p
        .stderr()
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("{"));
      expect(plain).toEqual([`keyward: port ${port} on 127.0.0.1 is already in use`]);
    } finally {
      taken.close();
    }
  });

  it("workers that keep dying stop the server with one line instead of restarting forever", async () => {
    const s = await serve(["--workers", "2"], { KEYWARD_LOG_LEVEL: "error" });
    let killed = 0;
    // Five unexpected exits within 30 s is a crash loop (workers/restart-policy.ts).
    while (s.child.exitCode === null && killed < 5) {
      const [pid] = await until(
        "a worker",
        () => s.workerPids(),
        (p) => p.length > 0,
        15_000,
      );
      process.kill(pid as number, "SIGKILL");
      killed++;
      await until(
        "the exit noticed",
        () => s.workerPids(),
        (p) => !p.includes(pid as number),
        15_000,
      );
    }
    expect(await s.exited).toBe(1);
    expect(s.stderr()).toMatch(/^keyward: workers keep exiting \(5 unexpected exits within 30 s\); stopping$/m);
  });
});
