import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const SERVER = join(ROOT, "packages/server");

/**
 * `npx keyward` must work after the first `npm install` of a fresh clone (CI runs this suite in
 * one). npm links bins before `prepare` builds dist/, so the bin is a file kept in the repository,
 * executable, that loads the built CLI.
 */
describe("the keyward bin", () => {
  const pkg = JSON.parse(readFileSync(join(SERVER, "package.json"), "utf8")) as { bin: Record<string, string> };
  const bin = join(SERVER, pkg.bin.keyward as string);

  it("is a file in the repository, outside dist/, and executable", () => {
    expect(pkg.bin.keyward).not.toMatch(/dist\//);
    expect(existsSync(bin)).toBe(true);
    expect(statSync(bin).mode & 0o111).toBe(0o111);
    const tracked = execFileSync("git", ["ls-files", "--stage", pkg.bin.keyward as string], { cwd: SERVER }).toString();
    expect(tracked).toMatch(/^100755 /);
  });

  it("is linked by npm install and runs the CLI", () => {
    const linked = join(ROOT, "node_modules/.bin/keyward");
    expect(existsSync(linked)).toBe(true);
    expect(realpathSync(linked)).toBe(realpathSync(bin));
    const version = execFileSync(linked, ["--version"]).toString().trim();
    expect(version).toBe(JSON.parse(readFileSync(join(SERVER, "package.json"), "utf8")).version);
    const help = execFileSync(linked, ["--help"]).toString();
    expect(help).toContain("serve");
  });
});
