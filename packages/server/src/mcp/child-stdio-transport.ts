import { type ChildProcess, spawn } from "node:child_process";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type JSONRPCMessage, JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";

/** Why a child stopped being usable; the gateway turns it into the message a caller sees. */
export type ChildFault = "exited" | "invalid_output" | "oversized" | "stalled" | "killed";

export interface ChildSpec {
  command: string;
  args: readonly string[];
  /** The child's whole environment: nothing of Keyward's own process.env is added to it. */
  env: Record<string, string>;
  cwd: string;
  /** One stdout line longer than this is a broken upstream, not a message to buffer forever. */
  maxLineBytes?: number;
  /**
   * Bytes written to the child's stdin and not yet read by it. Past this, the child has stopped
   * reading (or floods us with requests we answer) and is stopped, rather than the backlog
   * growing in our memory without bound.
   */
  maxBacklogBytes?: number;
}

const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
/** Room for many calls in flight at once (a request body is 1 MiB at most) while a child is busy. */
const DEFAULT_MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

/**
 * An MCP stdio client transport over a child process we spawn ourselves, instead of the SDK's
 * StdioClientTransport, because the gateway needs three things that one does not give:
 * - the exact environment (the SDK's always adds HOME, LOGNAME, SHELL, TERM, USER from ours);
 * - an immediate kill of the whole process group (a hung tool; the SDK waits 2 s + 2 s);
 * - a line that is not a JSON-RPC message ends the process (the SDK drops it and waits, so an
 *   upstream speaking garbage would only fail at the call's timeout).
 * stderr is drained and discarded: it may hold the user's secrets, so it is never logged.
 */
export class ChildStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private child: ChildProcess | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closed = false;
  private faultReason: ChildFault | undefined;
  private drained: Promise<void> | undefined;

  constructor(private readonly spec: ChildSpec) {}

  /** Set once the child is gone: why. */
  get fault(): ChildFault | undefined {
    return this.faultReason;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.spec.command, [...this.spec.args], {
        env: this.spec.env,
        cwd: this.spec.cwd,
        stdio: ["pipe", "pipe", "pipe"],
        shell: false,
        windowsHide: true,
        // Its own process group, so a kill reaches whatever the tool started too.
        detached: process.platform !== "win32",
      });
      this.child = child;
      let spawned = false;
      child.once("spawn", () => {
        spawned = true;
        resolve();
      });
      child.once("error", (err) => {
        // Only the spawn error names the command (never env values); later ones are pipe errors.
        if (!spawned) reject(new Error(`could not start the upstream MCP server (${codeOf(err)})`));
        this.finish("exited");
      });
      child.once("close", () => this.finish(this.faultReason ?? "exited"));
      child.stderr?.resume();
      // A pipe error without a listener would be thrown as an uncaught exception: the server's end.
      child.stderr?.on("error", () => {});
      child.stdin?.on("error", () => this.kill("exited"));
      child.stdout?.on("error", () => this.kill("exited"));
      child.stdout?.on("data", (chunk: Buffer) => this.onData(chunk));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (this.closed || !stdin || stdin.destroyed) return Promise.reject(new Error("the upstream MCP server is gone"));
    if (stdin.writableLength > (this.spec.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES)) {
      this.kill("stalled");
      return Promise.reject(new Error("the upstream MCP server stopped reading its input"));
    }
    if (stdin.write(`${JSON.stringify(message)}\n`)) return Promise.resolve();
    // One listener for every write waiting on the same drain (many calls in flight at once).
    this.drained ??= new Promise((resolve) =>
      stdin.once("drain", () => {
        this.drained = undefined;
        resolve();
      }),
    );
    return this.drained;
  }

  /** Graceful stop (idle reaping, shutdown): end stdin, SIGTERM, SIGKILL after a grace period. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.closed) {
      this.finish(this.faultReason ?? "killed");
      return;
    }
    this.faultReason ??= "killed";
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    child.stdin?.end();
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), 2000);
    timer.unref();
    await exited;
    clearTimeout(timer);
  }

  /** Immediate stop (hung or broken upstream). Calls in flight fail with a closed connection. */
  kill(reason: ChildFault = "killed"): void {
    this.faultReason ??= reason;
    this.signal("SIGKILL");
    // The "close" event follows; the pipes are torn down now so nothing more is read.
    this.child?.stdout?.removeAllListeners("data");
    this.finish(this.faultReason);
  }

  private signal(sig: NodeJS.Signals): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      if (process.platform !== "win32") process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        // Already gone.
      }
    }
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.pending.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.pending).toString("utf8").replace(/\r$/, "");
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
      if (line.trim() === "") continue;
      const message = parseMessage(line);
      if (message === undefined) {
        this.onerror?.(new Error("the upstream MCP server wrote something that is not an MCP message"));
        this.kill("invalid_output");
        return;
      }
      this.onmessage?.(message);
      if (this.closed) return;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > (this.spec.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES)) this.kill("oversized");
    }
  }

  private finish(reason: ChildFault): void {
    if (this.closed) return;
    this.closed = true;
    this.faultReason ??= reason;
    this.pending = [];
    this.onclose?.();
  }
}

function parseMessage(line: string): JSONRPCMessage | undefined {
  try {
    const parsed = JSONRPCMessageSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function codeOf(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === "string" && /^[A-Z0-9_]+$/.test(code) ? code : "spawn failed";
}
