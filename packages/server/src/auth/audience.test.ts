import { describe, expect, it } from "vitest";
import { audienceAccepted, KEYWARD, type Place } from "./audience.js";

const ISSUER = "https://keyward.example";
const CLOUD = `${ISSUER}/mcp/cloud`;
const at = (place: Place, ...aud: string[]) => audienceAccepted(aud, place, ISSUER);

describe("audience: where a token is accepted", () => {
  it("mcp: the issuer, or exactly that server's resource", () => {
    const cloud: Place = { kind: "mcp", server: "cloud" };
    expect(at(cloud, ISSUER)).toBe(true);
    expect(at(cloud, CLOUD)).toBe(true);
    expect(at(cloud, "other", CLOUD)).toBe(true);
    expect(at({ kind: "mcp", server: "tickets" }, CLOUD)).toBe(false);
    for (const aud of [`${CLOUD}/`, `${CLOUD}s`, "cloud", `${ISSUER}/`, "https://keyward.example.evil/mcp/cloud"]) {
      expect(at(cloud, aud), aud).toBe(false);
    }
  });

  it("a token bound to an MCP server is accepted at no other place", () => {
    for (const place of [
      KEYWARD,
      { kind: "gateway", agent: "cloud" },
      { kind: "held_by", agent: "cloud" },
    ] as Place[]) {
      expect(at(place, CLOUD), place.kind).toBe(false);
    }
  });

  it("an issuer with a trailing slash names the same resources", () => {
    expect(audienceAccepted([CLOUD], { kind: "mcp", server: "cloud" }, `${ISSUER}/`)).toBe(true);
  });
});
