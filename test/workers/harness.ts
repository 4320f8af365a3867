// `keyward serve --workers N` as a user runs it: the built bin, as a child process, on loopback.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = join(import.meta.dirname, "../../packages/server/dist/cli/main.js");
export const ADMIN_TOKEN = "workers-test-admin-token-0123456789abcdef";
const MASTER_KEY = Buffer.alloc(32, 8).toString("base64");

export interface Served {
  child: ChildProcess;
  url: string;
  dataDir: string;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** The PIDs of the primary's worker processes, now. */
  workerPids(): number[];
  // biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; body: any }>;
  /**
   * One gateway request on a new connection (`Connection: close`), so successive calls are spread
   * over the workers (the primary hands connections round-robin): the status and error code.
   */
  call(secret: string, agent?: string): Promise<{ status: number; code: string | undefined }>;
}

const running = new Set<Served>();
const dirs: string[] = [];

/** Runs `keyward serve` with `args`; `ready: false` returns before (or without) a listening line. */
export function spawnServe(args: string[], env: Record<string, string> = {}, dataDir = tempDir()) {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", "--data-dir", dataDir, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      KEYWARD_ADMIN_TOKEN: ADMIN_TOKEN,
      KEYWARD_MASTER_KEY: MASTER_KEY,
      KEYWARD_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, dataDir, stdout: () => out, stderr: () => err };
}

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "keyward-workers-"));
  dirs.push(d);
  return d;
}

/** Starts `keyward serve` and resolves once it prints its listening line. */
export async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const p = spawnServe(args, env);
  const url = await new Promise<string>((resolve, reject) => {
    p.child.stdout?.on("data", () => {
      const m = /listening on (http:\/\/\S+)/.exec(p.stdout());
      if (m) resolve(m[1] as string);
    });
    void p.exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${p.stderr()}`)));
  });
  const served: Served = {
    ...p,
    url,
    workerPids() {
      const pid = p.child.pid as number;
      try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number);
      } catch {
        return [];
      }
    },
    async admin(method, path, body) {
      const res = await fetch(`${url}/admin/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          connection: "close",
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        // A connection handed to a worker the moment it is killed is never answered (node:cluster
        // keeps the primary's copy of it open): such a call fails here instead of hanging.
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    call(secret, agent = "echo") {
      return new Promise((resolve, reject) => {
        const req = http.get(
          `${url}/agents/${agent}/echo`,
          { agent: false, headers: { "x-api-key": secret } },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => {
              const status = res.statusCode ?? 0;
              const code = status === 200 ? undefined : (JSON.parse(text) as { error?: { code?: string } }).error?.code;
              resolve({ status, code });
            });
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error("no answer within 10 s")));
        req.on("error", reject);
      });
    },
  };
  running.add(served);
  void p.exited.then(() => running.delete(served));
  return served;
}

/** SIGKILLs every server still running (its workers too) and removes the data dirs. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (s) => {
      const workers = s.workerPids();
      s.child.kill("SIGKILL");
      for (const pid of workers) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone with its primary
        }
      }
      await s.exited;
    }),
  );
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Polls `probe` until `done` holds or `deadlineMs` passes (then throws with the last value). */
export async function until<T>(what: string, probe: () => T | Promise<T>, done: (v: T) => boolean, deadlineMs: number) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const last = await probe();
    if (done(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `n` gateway calls one after another, each on a new connection. */
export async function calls(s: Served, secret: string, n: number) {
  const out: Array<{ status: number; code: string | undefined }> = [];
  for (let i = 0; i < n; i++) out.push(await s.call(secret));
  return out;
}

/** The `worker` fields of the access-log lines on stderr (JSON logs): which workers answered. */
export function workersInAccessLog(stderr: string): Set<number> {
  const seen = new Set<number>();
  for (const line of stderr.split("\n")) {
    if (!line.includes('"path"')) continue;
    try {
      const w = (JSON.parse(line) as { worker?: unknown }).worker;
      if (typeof w === "number") seen.add(w);
    } catch {
      // not a JSON line
    }
  }
  return seen;
}
