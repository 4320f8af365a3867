import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// What `npm pack` would publish of each package (after `npm run build`): every file the manifest
// points at (exports, bin, main, types) must be in it, with the license.
const ROOT = join(import.meta.dirname, "..");

interface Manifest {
  name: string;
  license: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports: Record<string, Record<string, string>>;
}

function packed(dir: string): Set<string> {
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: join(ROOT, dir),
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  const [report] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return new Set(report?.files.map((f) => f.path));
}

const strip = (p: string) => p.replace(/^\.\//, "");

describe.each(["packages/sdk", "packages/server"])("%s/package.json", (dir) => {
  const manifest = JSON.parse(readFileSync(join(ROOT, dir, "package.json"), "utf8")) as Manifest;

  it("points only at files the package really ships, and ships the license", () => {
    const files = packed(dir);
    const targets = [
      ...Object.values(manifest.exports).flatMap((conditions) => Object.values(conditions)),
      ...Object.values(manifest.bin ?? {}),
      ...(manifest.main ? [manifest.main] : []),
      ...(manifest.types ? [manifest.types] : []),
    ].map(strip);
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.filter((t) => !files.has(t))).toEqual([]);
    expect(manifest.license).toBe("Apache-2.0");
    expect(files.has("LICENSE")).toBe(true);
    expect(readFileSync(join(ROOT, dir, "LICENSE"), "utf8")).toBe(readFileSync(join(ROOT, "LICENSE"), "utf8"));
  });
});

describe("the LICENSE file", () => {
  it("is the Apache License 2.0 the manifests name", () => {
    const text = readFileSync(join(ROOT, "LICENSE"), "utf8");
    expect(text).toContain("Apache License\n                           Version 2.0, January 2004");
    expect(text).toContain("END OF TERMS AND CONDITIONS");
    expect(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).license).toBe("Apache-2.0");
  });
});

describe("the keyward package's entry", () => {
  it("starts a server from a script", async () => {
    const { loadConfig, startKeyward } = await import("keyward");
    const dir = mkdtempSync(join(tmpdir(), "keyward-entry-"));
    const kw = await startKeyward(
      loadConfig({
        flags: { port: "0", "data-dir": dir },
        env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 3).toString("base64"), KEYWARD_LOG_LEVEL: "silent" },
      }),
    );
    try {
      expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
    } finally {
      await kw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
