import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchesInOrder, startSession, walkthroughBlocks } from "../packages/server/test-support/walkthrough.js";

/**
 * "A fresh clone with one npm install runs every README and example command as written." The
 * marked blocks of README.md and of each example's README are run in order, in a clone of this
 * repository, as a reader pastes them. What the test changes, and why:
 * - `npm install` lines are not run: the clone links this checkout's node_modules and built dist/
 *   (installing and building would take minutes; CI's fresh clone does both once, for every test);
 * - so `npm start` runs with npm_config_ignore_scripts (no prestart build of the linked dist/);
 * - the documented ports (8080, 9000, …) become free ones, so a server already on 8080 is no
 *   obstacle, and `kwa_…` in `export ADMIN=kwa_…` becomes the token `npm start` printed;
 * - a background block's `export NAME=…` lines are pasted into the shell, as its README asks.
 * The README files are the working tree's, so an edit is tested before it is committed.
 */

const ROOT = join(import.meta.dirname, "..");
const DOCUMENTED_PORTS = [8080, 8081, 8082, 8083, 9000, 4200, 4300];
const EXAMPLES = ["multi-agent", "openai-agent", "egress-agent"];

let clone: string;
let scratch: string;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "keyward-walkthrough-"));
  clone = join(scratch, "keyward");
  execFileSync("git", ["clone", "--quiet", "--local", ROOT, clone]);
  symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));
  for (const pkg of ["sdk", "server"])
    symlinkSync(join(ROOT, "packages", pkg, "dist"), join(clone, "packages", pkg, "dist"));
  for (const readme of ["README.md", ...EXAMPLES.map((e) => `examples/${e}/README.md`)]) {
    cpSync(join(ROOT, readme), join(clone, readme));
  }
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Runs one README's walkthrough; resolves with each block's output, in order. */
async function runWalkthrough(readme: string) {
  const blocks = walkthroughBlocks(readFileSync(join(clone, readme), "utf8"));
  expect(blocks.length, `${readme} has marked blocks`).toBeGreaterThan(0);
  const ports = new Map<number, number>();
  for (const p of DOCUMENTED_PORTS) ports.set(p, await freePort());
  const env: NodeJS.ProcessEnv = { npm_config_ignore_scripts: "true", npm_config_update_notifier: "false" };
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("KEYWARD_") && !k.startsWith("npm_") && !k.startsWith("VITEST")) env[k] = v;
  }
  env.KEYWARD_PORT = String(ports.get(8080));
  env.KEYWARD_LOG_FORMAT = "json";
  const session = startSession({ cwd: clone, env, scratch });
  const outputs: string[] = [];
  let adminToken: string | undefined;
  try {
    for (const block of blocks) {
      const withPorts = (text: string) =>
        text.replace(/\b(8080|8081|8082|8083|9000|4200|4300)\b/g, (p) => String(ports.get(Number(p))));
      let code = withPorts(block.code);
      code = code.replace(/^npm install\n?/m, "");
      if (adminToken) code = code.replace(/^export ADMIN=kwa_…/m, `export ADMIN=${adminToken}`);
      if (block.kind === "background") {
        const out = await session.start(code, withPorts(block.until as string));
        adminToken ??= /admin token: (kwa_\w+)/.exec(out)?.[1];
        const exports = out.split("\n").filter((l) => /^export [A-Z_]+=\S+$/.test(l));
        if (exports.length > 0) await session.run(exports.join("\n"));
        outputs.push(out);
        continue;
      }
      const out = await session.run(code);
      for (const pieces of block.expects.map((e) => e.map(withPorts))) {
        expect(matchesInOrder(out, pieces), `${readme}: "# → ${pieces.join("…")}" in:\n${out}`).toBe(true);
      }
      outputs.push(out);
    }
    return { outputs, logs: session.backgroundOutput() };
  } finally {
    await session.close();
  }
}

describe("the README's walkthrough, pasted in order into a fresh clone", () => {
  it("runs every block, prints what the README says, and leaves no secret in the working tree", async () => {
    const { outputs, logs } = await runWalkthrough("README.md");
    const all = outputs.join("\n");
    // Step 3: the agent saw a JWT, then the rate limit; step 4: the revoked key is refused.
    expect(all).toMatch(/"auth":"Bearer eyJ/);
    expect(all).toContain("200 200 200 200 429");
    expect(all).toContain('"code":"key_revoked"');
    // The token section ran with a live key, and its access token passed the gateway.
    expect(all).toMatch(/"refresh_token":"kwr_/);
    // Every key secret the walkthrough saw: none in the server's logs, none in a file of the clone.
    const secrets = [...new Set(all.match(/kwk_[0-9A-Za-z]{38}/g) ?? [])];
    expect(secrets.length).toBeGreaterThanOrEqual(2);
    for (const s of secrets) expect(logs).not.toContain(s);
    const untracked = execFileSync("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: clone })
      .toString()
      .split("\n")
      // Not ours: the README copies, and the links to node_modules and dist/ (a link is no directory,
      // so .gitignore's `node_modules/` and `dist/` do not cover it).
      .filter(
        (l) => l !== "" && !/ (README\.md|examples\/[^/]+\/README\.md|node_modules|packages\/\w+\/dist)$/.test(l),
      );
    expect(untracked).toEqual([]);
    expect(existsSync(join(clone, "key.json"))).toBe(false);
  }, 120_000);
});

describe("the examples' walkthroughs, each with its own Keyward and data dir, offline", () => {
  it.each(EXAMPLES)(
    "%s: every marked command works as written",
    async (example) => {
      const { outputs, logs } = await runWalkthrough(`examples/${example}/README.md`);
      // Its Keyward used a data dir of its own, so its admin token was the one in use, never ignored
      // (in a full run the quick start's ./.keyward exists by now: the case).
      expect(existsSync(join(clone, "examples", example, ".keyward"))).toBe(true);
      expect(logs).not.toContain("is set but not used");
      expect(outputs.join("\n")).not.toContain("cannot start");
    },
    90_000,
  );
});
