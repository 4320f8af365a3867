import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A README's walkthrough, run the way a reader pastes it. Blocks are marked in the Markdown with
 * an HTML comment on the line before the fence:
 *   <!-- walkthrough -->                               pasted into the reader's shell, in order
 *   <!-- walkthrough: background until "TEXT" -->      started and left running (a server, an
 *                                                      agent); the next block waits for TEXT
 * A `# → TEXT` line in a block says what the commands before it print; `…` stands for anything.
 */
export interface WalkthroughBlock {
  kind: "shell" | "background";
  until?: string;
  code: string;
  /** The block's `# →` lines, each split at `…` into pieces that must appear in this order. */
  expects: string[][];
}

const MARKER = /^<!-- walkthrough(?::\s*background until "([^"]+)")?\s*-->$/;

export function walkthroughBlocks(markdown: string): WalkthroughBlock[] {
  const lines = markdown.split("\n");
  const blocks: WalkthroughBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec((lines[i] as string).trim());
    if (!m) continue;
    if (!/^```(sh|bash)$/.test(lines[i + 1] ?? ""))
      throw new Error(`walkthrough marker on line ${i + 1}: no sh fence follows`);
    const end = lines.indexOf("```", i + 2);
    const code = lines.slice(i + 2, end).join("\n");
    const expects = code
      .split("\n")
      .filter((l) => l.startsWith("# → "))
      .map((l) =>
        l
          .slice("# → ".length)
          .trim()
          .split("…")
          .filter((p) => p !== ""),
      );
    blocks.push({ kind: m[1] === undefined ? "shell" : "background", ...(m[1] ? { until: m[1] } : {}), code, expects });
    i = end;
  }
  return blocks;
}

/** True when `pieces` appear in `text` in this order. */
export function matchesInOrder(text: string, pieces: string[]): boolean {
  let at = 0;
  for (const p of pieces) {
    const found = text.indexOf(p, at);
    if (found < 0) return false;
    at = found + p.length;
  }
  return true;
}

interface Output {
  text: () => string;
  exited: Promise<number | null>;
  /** Resolves when the output has `needle` past `from`; rejects if the process exits first. */
  waitFor(needle: string, from?: number): Promise<void>;
}

function capture(child: ChildProcess, label: string): Output {
  let out = "";
  const waiters = new Set<() => void>();
  // "close", not "exit": a block that ends with `cmd &` exits at once while cmd still prints.
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const on = (d: string) => {
    out += d;
    for (const w of [...waiters]) w();
  };
  child.stdout?.setEncoding("utf8").on("data", on);
  child.stderr?.setEncoding("utf8").on("data", on);
  return {
    text: () => out,
    exited,
    waitFor: (needle, from = 0) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (out.indexOf(needle, from) >= 0) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
        void exited.then((code) => {
          check();
          if (waiters.delete(check)) reject(new Error(`${label} exited (${code}) before printing ${needle}:\n${out}`));
        });
      }),
  };
}

/**
 * The reader's terminal: one bash for every pasted block, so variables and functions carry over,
 * with `set -e`, so any failing command ends it. Each block runs from a file (its commands read
 * /dev/null, never the rest of the script); background blocks run in their own process group.
 */
export function startSession(opts: { cwd: string; env: NodeJS.ProcessEnv; scratch: string }) {
  const shell = spawn("bash", ["--noprofile", "--norc"], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const session = capture(shell, "the walkthrough's shell");
  shell.stdin?.write("set -eo pipefail\n");
  const background: Array<{ child: ChildProcess; out: Output }> = [];
  let n = 0;

  return {
    /** Pastes `code`; resolves with what it printed, or rejects with the shell's output if it failed. */
    async run(code: string): Promise<string> {
      n++;
      const file = join(opts.scratch, `block-${n}.sh`);
      writeFileSync(file, `${code}\n`);
      const from = session.text().length;
      shell.stdin?.write(`source ${file} </dev/null\necho "@@block ${n} done"\n`);
      await session.waitFor(`@@block ${n} done`, from);
      return session.text().slice(from).replace(`@@block ${n} done\n`, "");
    },
    /** Starts `code` and resolves with its output once it has printed `until`. */
    async start(code: string, until: string): Promise<string> {
      const child = spawn("bash", ["--noprofile", "--norc", "-c", code], {
        cwd: opts.cwd,
        env: opts.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      const out = capture(child, `background block ${JSON.stringify(code.slice(0, 60))}`);
      background.push({ child, out });
      await out.waitFor(until);
      return out.text();
    },
    /** Everything the background blocks printed so far (a server's logs). */
    backgroundOutput: () => background.map((b) => b.out.text()).join("\n"),
    async close(): Promise<void> {
      shell.stdin?.end();
      for (const { child } of background.reverse()) {
        try {
          process.kill(-(child.pid as number), "SIGTERM"); // the group: bash's `&` children too
        } catch {}
      }
      // A server that does not stop on SIGTERM must not outlive the test run: kill its group after a
      // grace longer than its own shutdown bound (shutdown_timeout_ms, 10 s by default).
      const grace = setTimeout(() => {
        for (const { child } of background) {
          try {
            process.kill(-(child.pid as number), "SIGKILL");
          } catch {}
        }
      }, 20_000);
      await Promise.all([session.exited, ...background.map((b) => b.out.exited)]);
      clearTimeout(grace);
    },
  };
}
