import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

// scripts/check-import-cycles.mjs (run by `npm run lint`) against small trees laid out like ours.
const SCRIPT = join(import.meta.dirname, "..", "scripts", "check-import-cycles.mjs");
const roots: string[] = [];

/** A repository root holding the given files (paths relative to it). */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "kw-cycles-"));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(root: string, script = SCRIPT) {
  const r = spawnSync(process.execPath, [script, root], { encoding: "utf8" });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/**
 * A copy of the script whose allowlist also holds `entry`: the real list shrinks to nothing as
 * upward imports are removed, and the mechanism must keep working for the next one.
 */
function scriptAllowing(entry: string, reason: string): string {
  const text = readFileSync(SCRIPT, "utf8");
  const marker = "const ALLOWED = new Map([";
  expect(text).toContain(marker);
  const dir = mkdtempSync(join(tmpdir(), "kw-cycles-script-"));
  roots.push(dir);
  const copy = join(dir, "check-import-cycles.mjs");
  writeFileSync(copy, text.replace(marker, `${marker}\n  [${JSON.stringify(entry)}, ${JSON.stringify(reason)}],`));
  return copy;
}

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe("check-import-cycles", () => {
  it("exits non-zero and names the cycle and the imports that make it", () => {
    const root = tree({
      "packages/server/src/tokens/tokens-service.ts":
        'import { limit } from "../gateway/limits.js";\nexport const t = limit;\n',
      "packages/server/src/gateway/authorize.ts":
        'import type { T } from "../tokens/access-tokens.js";\nexport type A = T;\n',
      "packages/server/src/tokens/access-tokens.ts": "export type T = string;\n",
      "packages/server/src/gateway/limits.ts": "export const limit = 1;\n",
    });
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.err).toContain("import cycle in packages/server/src: gateway/ -> tokens/ -> gateway/");
    expect(r.err).toContain("gateway/authorize.ts imports ../tokens/access-tokens.js");
    expect(r.err).toContain("tokens/tokens-service.ts imports ../gateway/limits.js");
  });

  it("finds a cycle through three folders, and one through a file at the top of src/", () => {
    const root = tree({
      "packages/sdk/src/a/x.ts": 'export * from "../b/y.js";\n',
      "packages/sdk/src/b/y.ts": 'import "../c/z.js";\nexport const y = 1;\n',
      "packages/sdk/src/c/z.ts": 'export const z = await import("../a/x.js");\n',
      "packages/sdk/src/errors.ts": 'import { y } from "./b/y.js";\nexport const e = y;\n',
      "packages/sdk/src/b/w.ts": 'import { e } from "../errors.js";\nexport const w = e;\n',
    });
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.err).toContain("import cycle in packages/sdk/src: a/ -> b/ -> c/ -> a/");
    expect(r.err).toContain("import cycle in packages/sdk/src: b/ -> errors.ts -> b/");
  });

  it("exits zero when folders import one way; tests, comments, packages and same-folder imports do not count", () => {
    const root = tree({
      "packages/server/src/gateway/authorize.ts":
        'import type { T } from "../tokens/access-tokens.js";\nexport type A = T;\n',
      "packages/server/src/tokens/access-tokens.ts":
        'import { n } from "./numbers.js";\nexport type T = string;\nexport const m = n;\n',
      "packages/server/src/tokens/numbers.ts": "export const n = 1;\n",
      // A test may import anything; a comment is not an import; another package is not this graph.
      "packages/server/src/tokens/tokens.test.ts": 'import "../gateway/authorize.js";\n',
      "packages/server/src/tokens/doc.ts":
        '// import "../gateway/authorize.js";\nimport { z } from "zod";\nimport "../../../sdk/src/x.js";\nexport const s = z;\n',
    });
    const r = check(root);
    expect(r.err).toBe("");
    expect(r.status).toBe(0);
    expect(r.out).toContain("no import cycles between folders");
  });

  it("leaves out an allowed import (file -> folder) but not another file making the same edge", () => {
    const files = {
      // Allowed in the script copy below: auth/caller-auth.ts may import tokens/.
      "packages/server/src/auth/caller-auth.ts":
        'import type { T } from "../tokens/access-tokens.js";\nexport type C = T;\n',
      "packages/server/src/tokens/access-tokens.ts": "export type T = string;\n",
      "packages/server/src/tokens/token-exchange.ts":
        'import type { C } from "../auth/caller-auth.js";\nexport type X = C;\n',
    };
    const script = scriptAllowing("server: auth/caller-auth.ts -> tokens/", "checks access tokens");
    const allowed = check(tree(files), script);
    expect(allowed.err).toBe("");
    expect(allowed.status).toBe(0);
    expect(allowed.out).toContain("allowed for now: server: auth/caller-auth.ts -> tokens/");

    const another = check(
      tree({ ...files, "packages/server/src/auth/audience.ts": 'import "../tokens/access-tokens.js";\n' }),
      script,
    );
    expect(another.status).toBe(1);
    expect(another.err).toContain("import cycle in packages/server/src: auth/ -> tokens/ -> auth/");
    expect(another.err).toContain("auth/audience.ts imports ../tokens/access-tokens.js");
  });
});
