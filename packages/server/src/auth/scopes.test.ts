import { describe, expect, it } from "vitest";
import { covers, firstUncovered } from "./scopes.js";

describe("covers", () => {
  it("agent:* stands for every agent, and nothing else", () => {
    expect(covers(["agent:*"], "agent:echo")).toBe(true);
    expect(covers(["agent:*"], "mcp:tickets")).toBe(false);
    expect(covers(new Set(["agent:echo"]), "agent:other")).toBe(false);
  });

  it("mcp:<server> covers its tools; a tool scope covers neither its server nor another tool", () => {
    expect(covers(["mcp:tickets"], "mcp:tickets:search")).toBe(true);
    expect(covers(["mcp:tickets"], "mcp:tickets2:search")).toBe(false);
    expect(covers(["mcp:tickets"], "mcp:other:search")).toBe(false);
    expect(covers(["mcp:tickets:search"], "mcp:tickets")).toBe(false);
    expect(covers(["mcp:tickets:search"], "mcp:tickets:close")).toBe(false);
    expect(covers(["mcp:*"], "mcp:tickets:close")).toBe(true);
    expect(covers(["mcp:*"], "agent:echo")).toBe(false);
    // No server part: never taken for a prefix of anything.
    expect(covers(["mcp:"], "mcp::search")).toBe(false);
  });

  it("firstUncovered names the first scope the holder lacks", () => {
    expect(firstUncovered(["mcp:tickets"], ["mcp:tickets:search", "mcp:cloud"])).toBe("mcp:cloud");
    expect(firstUncovered(["mcp:tickets", "agent:*"], ["mcp:tickets:search", "agent:x"])).toBeUndefined();
  });
});
