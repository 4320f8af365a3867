import { describe, expect, it } from "vitest";
import { agentLocation, egressBase, egressTargetPath, splitEgressPath } from "./egress-target.js";

const base = egressBase("https://api.example.com/v1");
const root = egressBase("https://api.example.com");

describe("egressTargetPath", () => {
  it("appends the agent's path and query to base_url's path", () => {
    expect(egressTargetPath(base, "/chat/completions", "?stream=true&x=%2F")).toBe(
      "/v1/chat/completions?stream=true&x=%2F",
    );
    expect(egressTargetPath(base, "", "")).toBe("/v1");
    expect(egressTargetPath(base, "/", "")).toBe("/v1/");
    expect(egressTargetPath(root, "", "?q=1")).toBe("/?q=1");
    expect(egressTargetPath(egressBase("https://api.example.com/v1/"), "/models", "")).toBe("/v1/models");
  });

  it("keeps what real APIs put in paths: @, encoded slashes inside a name, dots inside names", () => {
    expect(egressTargetPath(base, "/users/@me", "")).toBe("/v1/users/@me");
    expect(egressTargetPath(base, "/projects/group%2Fproject/files/a.b..c", "")).toBe(
      "/v1/projects/group%2Fproject/files/a.b..c",
    );
    expect(egressTargetPath(base, "/%E2%9C%93", "?next=../x")).toBe("/v1/%E2%9C%93?next=../x");
  });

  it.each([
    "/..",
    "/../admin",
    "/a/../../admin",
    "/%2e%2e/admin",
    "/%2E%2e/admin",
    "/.%2e/admin",
    "/%252e%252e/admin",
    "/%25252e%25252e/admin",
    "/..%2fadmin",
    "/a%2f..%2f..%2fadmin",
    "/..;/admin",
    "/..%3b/admin",
    "/.",
    "/./x",
    "/%2e/x",
    "/a\\..\\admin",
    "/%5c..%5cadmin",
    "//evil.example/x",
    "/%2f%2fevil.example/x",
    "/http://evil.example/x",
    "/x%0d%0aHost:%20evil",
    "/x%00",
    "/x%09y",
    "/%u002e%u002e/x",
    "/%c0%ae%c0%ae/x",
    "/%ef%bc%8e%ef%bc%8e/x",
    "/x#frag",
    "/x y",
    "/caf\u00e9",
    // Passed before egress shared the gateway's rules (http/path-safety.ts):
    "/%2525252e%2525252e/admin",
    "/%e0%80%ae%e0%80%ae/admin",
    "/%ef%bc%8f..%ef%bc%8fadmin",
    "/%e2%80%a5/admin",
    "/..%20/admin",
    "/..%3fx/admin",
    "/%25u002e%25u002e/admin",
    "/x%c2%85",
  ])("refuses %s", (rest) => {
    expect(() => egressTargetPath(base, rest, "")).toThrow(expect.objectContaining({ code: "invalid_request" }));
  });

  it("refuses a query with control or non-ASCII characters", () => {
    expect(() => egressTargetPath(base, "/x", "?a=\r\n")).toThrow(/query/);
    expect(() => egressTargetPath(base, "/x", "?a=\u00e9")).toThrow(/query/);
  });
});

describe("splitEgressPath", () => {
  it("splits the credential name from the rest", () => {
    expect(splitEgressPath("/egress/openai/v1/models")).toEqual({ name: "openai", rest: "/v1/models" });
    expect(splitEgressPath("/egress/openai")).toEqual({ name: "openai", rest: "" });
    expect(splitEgressPath("/egress/a%2Fb/x")).toEqual({ name: "a/b", rest: "/x" });
    expect(splitEgressPath("/egress/%ZZ/x")?.name).toBe("\0");
    expect(splitEgressPath("/egress/")).toBeUndefined();
    expect(splitEgressPath("/agents/x")).toBeUndefined();
  });
});

describe("agentLocation", () => {
  const requested = new URL("https://api.example.com/v1/files/1?x=1");
  const place = (loc: string) => agentLocation(loc, requested, base, "/egress/files");

  it("points a Location under base_url back through egress", () => {
    expect(place("https://api.example.com/v1/files/2?y=2#z")).toBe("/egress/files/files/2?y=2#z");
    expect(place("/v1/other")).toBe("/egress/files/other");
    expect(place("3")).toBe("/egress/files/files/3");
    expect(place("https://api.example.com/v1")).toBe("/egress/files");
  });

  it("drops one that leaves base_url: another origin, scheme, port, userinfo, or path", () => {
    for (const loc of [
      "https://evil.example/v1/x",
      "//evil.example/v1/x",
      "http://api.example.com/v1/x",
      "https://api.example.com:8443/v1/x",
      "https://user:pw@api.example.com/v1/x",
      "https://api.example.com/admin",
      "/v1/../admin",
      "/v10/x",
      "https://api.example.com.evil.example/v1/x",
      "javascript:alert(1)",
      "http://[::1",
    ]) {
      expect(place(loc), loc).toBeNull();
    }
  });
});
