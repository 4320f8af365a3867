import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";
import { columns, synopsis } from "./help.js";

const GROUPS = [
  "agents",
  "consumers",
  "keys",
  "credentials",
  "grants",
  "audit",
  "signing-keys",
  "master-key",
  "users",
  "usage",
  "alerts",
  "admin-tokens",
];
const ROW = /^( +)(\S+(?: \S+)*)( {2,})\S/;

/**
 * What is wrong with a help text's layout: a line over 100 columns; in a block of two-column
 * rows, a description (or its wrapped continuation) not starting at the block's one column; a
 * wrapped synopsis whose continuation does not start under the first argument.
 */
function layoutProblems(text: string): string[] {
  const problems: string[] = [];
  for (const line of text.split("\n")) if (line.length > 100) problems.push(`too long: ${line}`);
  for (const block of text.split("\n\n")) {
    const lines = block.split("\n");
    const rows = lines.map((l) => ROW.exec(l)).filter((m) => m !== null);
    if (rows.length > 0) {
      const cols = new Set(rows.map((m) => `${m[1]}${m[2]}${m[3]}`.length));
      if (cols.size !== 1) problems.push(`columns at ${[...cols].join(", ")}:\n${block}`);
      const col = [...cols][0]!;
      for (const l of lines) {
        if (l.startsWith(" ") && !ROW.test(l) && l.length - l.trimStart().length !== col) {
          problems.push(`continuation not at column ${col}: ${l}`);
        }
      }
      continue;
    }
    let head = "";
    for (const l of lines) {
      if (l.startsWith("  keyward ")) head = l;
      else if (l.startsWith("   ")) {
        const col = l.length - l.trimStart().length;
        if (!/^ {2}keyward( [a-z-]+)+ $/.test(head.slice(0, col))) problems.push(`not under the arguments: ${l}`);
      }
    }
  }
  return problems;
}

describe("--help layout", () => {
  const outputs: (readonly [string, () => Promise<string>])[] = [
    ["keyward --help", async () => (await captureCli(["--help"], { env: {} })).stdout],
    ["keyward admin-token --help", async () => (await captureCli(["admin-token", "--help"], { env: {} })).stdout],
    ...GROUPS.map(
      (g) => [`keyward ${g} --help`, async () => (await captureCli([g, "--help"], { env: {} })).stdout] as const,
    ),
  ];

  it.each(outputs)("%s aligns its columns and fits 100 columns", async (_, run) => {
    const text = await run();
    expect(text).toMatch(/^usage: keyward /);
    expect(layoutProblems(text)).toEqual([]);
  });

  it("keyward serve --help (the built CLI, as typed) aligns its columns", () => {
    const bin = join(import.meta.dirname, "../../dist/cli/main.js");
    const r = spawnSync(process.execPath, [bin, "serve", "--help"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("  --data-dir DIR  ");
    expect(r.stdout).toContain("  KEYWARD_ACCESS_LOG  ");
    expect(layoutProblems(r.stdout)).toEqual([]);
  });

  it("puts the main usage's commands in one column, serve and admin-token included", async () => {
    const { stdout } = await captureCli(["--help"], { env: {} });
    const at = (name: string) => {
      const line = stdout.split("\n").find((l) => l.startsWith(`  ${name}  `));
      return line ? line.length - line.slice(2 + name.length).trimStart().length : -1;
    };
    expect(at("serve")).toBeGreaterThan(0);
    expect(new Set([at("serve"), at("admin-token reset"), ...GROUPS.map(at)]).size).toBe(1);
  });

  it("the checker itself catches a misaligned row and a stray continuation", () => {
    // The main usage as it was before this layout.
    const before = [
      "commands:",
      "  serve      run the Keyward server (keyward serve --help)",
      "  admin-token reset   replace every admin token (offline, on the store)",
      "  agents        the agents Keyward protects",
    ].join("\n");
    expect(layoutProblems(before)).not.toEqual([]);
    expect(layoutProblems(["  keyward x do A", "      B"].join("\n"))).not.toEqual([]);
    expect(
      layoutProblems(
        [
          ...columns([
            ["a", "one"],
            ["long flag", "x ".repeat(60)],
          ]),
        ].join("\n"),
      ),
    ).toEqual([]);
    expect(layoutProblems(synopsis("keyward keys create", "[--a A] ".repeat(20).trim()).join("\n"))).toEqual([]);
  });
});
