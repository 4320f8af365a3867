import { describe, expect, it } from "vitest";
import { captureCli } from "../../test-support/cli-capture.js";

/** Runs the CLI in-process with collecting streams; no server is involved in these cases. */
const cli = (argv: string[], env: Record<string, string | undefined> = {}) => captureCli(argv, { env });

// An address nothing should ever be asked: these cases must fail before any request.
const env = { KEYWARD_URL: "http://127.0.0.1:9", KEYWARD_ADMIN_TOKEN: "x".repeat(40) };

describe("runCli usage", () => {
  it("prints the main usage for --help and 'help'", async () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("usage: keyward <command>");
      expect(r.stdout).toMatch(/agents\s+.*\n/);
    }
  });

  it("prints a group's usage for '<group> --help', even after a subcommand", async () => {
    for (const argv of [
      ["keys", "--help"],
      ["keys", "create", "-h"],
      ["help", "keys"],
    ]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("keyward keys create --owner");
      expect(r.stdout).toContain("--rate-limit LIMIT/WINDOW");
    }
  });

  it("rejects an unknown command with one line and a hint", async () => {
    const r = await cli(["agentz", "list"], env);
    expect(r).toMatchObject({ code: 2, stdout: "" });
    expect(r.stderr).toBe("error: unknown command 'agentz'\nsee 'keyward --help'\n");
  });

  it("rejects an unknown subcommand and points at the group's help", async () => {
    const r = await cli(["agents", "remove", "a"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("error: unknown command 'keyward agents remove'\nsee 'keyward agents --help'\n");
  });

  it("rejects an unknown flag", async () => {
    const r = await cli(["agents", "list", "--verbose"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: unknown flag --verbose\n/);
  });

  it("rejects a missing command", async () => {
    expect((await cli([])).code).toBe(2);
    expect((await cli(["agents"], env)).stderr).toContain("missing command");
  });

  it("checks positionals and required flags", async () => {
    expect((await cli(["agents", "get"], env)).stderr).toContain("error: missing NAME");
    expect((await cli(["agents", "create", "a"], env)).stderr).toContain("error: --upstream is required");
    expect((await cli(["agents", "update", "a"], env)).stderr).toContain("nothing to update");
  });

  it("explains a bad --rate-limit before calling the server", async () => {
    const r = await cli(
      ["keys", "create", "--owner", "consumer:a", "--scopes", "agent:x", "--rate-limit", "fast"],
      env,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--rate-limit must look like 100/60s");
  });

  it("explains a bad --owner and bad --metadata", async () => {
    expect((await cli(["keys", "create", "--owner", "acme", "--scopes", "agent:x"], env)).stderr).toContain(
      "--owner must be consumer:NAME",
    );
    expect((await cli(["consumers", "create", "a", "--metadata", "[1]"], env)).code).toBe(2);
  });

  it("asks for a token when none is set", async () => {
    const r = await cli(["agents", "list"], { KEYWARD_URL: env.KEYWARD_URL });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no admin token: set KEYWARD_ADMIN_TOKEN or pass --token");
  });

  it("refuses a URL with credentials without echoing them", async () => {
    const r = await cli(["agents", "list", "--url", "http://admin:hunter2@127.0.0.1:9"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain("hunter2");
  });

  it("prints the version", async () => {
    const r = await cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
