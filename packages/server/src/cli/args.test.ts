import { describe, expect, it } from "vitest";
import {
  expectPositionals,
  firstPositional,
  GLOBAL_OPTIONS,
  parseFlags,
  parseJsonObject,
  parseList,
  parseNonNegativeInt,
  parsePositiveInt,
  parseQuota,
  parseRateLimit,
  UsageError,
} from "./args.js";
import { keyFields } from "./commands/keys.js";

describe("firstPositional", () => {
  it("skips global flags and their values", () => {
    expect(firstPositional(["--url", "http://x", "--json", "agents", "list"], GLOBAL_OPTIONS)).toBe(3);
    expect(firstPositional(["--url=http://x", "agents"], GLOBAL_OPTIONS)).toBe(1);
    expect(firstPositional(["-h", "keys"], GLOBAL_OPTIONS)).toBe(1);
  });

  it("answers -1 when there is no positional", () => {
    expect(firstPositional(["--json", "--token", "t"], GLOBAL_OPTIONS)).toBe(-1);
    expect(firstPositional([], GLOBAL_OPTIONS)).toBe(-1);
  });

  it("treats what follows -- as positional", () => {
    expect(firstPositional(["--", "--json"], GLOBAL_OPTIONS)).toBe(1);
  });
});

describe("parseFlags", () => {
  const options = { ...GLOBAL_OPTIONS, upstream: { type: "string" } } as const;

  it("parses flags anywhere among positionals", () => {
    const { values, positionals } = parseFlags(["a", "--upstream", "http://u", "--json"], options);
    expect(positionals).toEqual(["a"]);
    expect(values).toMatchObject({ upstream: "http://u", json: true });
  });

  it("reports an unknown flag in one line", () => {
    expect(() => parseFlags(["--upstreem", "x"], options)).toThrow(new UsageError("unknown flag --upstreem"));
  });

  it("reports a missing value in one line", () => {
    const err = captureUsage(() => parseFlags(["--upstream"], options));
    expect(err.message).toContain("--upstream");
    expect(err.message).not.toContain("\n");
  });
});

describe("expectPositionals", () => {
  it("names what is missing or extra", () => {
    expect(() => expectPositionals([], ["NAME"])).toThrow("missing NAME");
    expect(() => expectPositionals(["a", "b"], ["NAME"])).toThrow("unexpected argument 'b'");
    expect(expectPositionals(["a"], ["NAME"])).toEqual(["a"]);
  });
});

describe("parseRateLimit", () => {
  it.each([
    ["100/60s", { limit: 100, window_s: 60 }],
    ["100/60", { limit: 100, window_s: 60 }],
    ["10/s", { limit: 10, window_s: 1 }],
    ["5/1m", { limit: 5, window_s: 60 }],
    ["1000/h", { limit: 1000, window_s: 3600 }],
    ["7/2d", { limit: 7, window_s: 172_800 }],
    [" 3 / 10s ", { limit: 3, window_s: 10 }],
  ])("%s", (raw, expected) => {
    expect(parseRateLimit(raw)).toEqual(expected);
  });

  it.each(["100", "100/", "/60s", "100/60x", "0/60s", "100/0s", "abc", "1.5/60s"])("rejects %s", (raw) => {
    const err = captureUsage(() => parseRateLimit(raw));
    expect(err.message).toContain("--rate-limit");
  });
});

describe("parseQuota", () => {
  it("accepts day, month and total", () => {
    expect(parseQuota("10000/day")).toEqual({ limit: 10000, period: "day" });
    expect(parseQuota("5/Month")).toEqual({ limit: 5, period: "month" });
    expect(parseQuota("1/total")).toEqual({ limit: 1, period: "total" });
  });

  it.each(["10000", "10000/week", "0/day", "x/day", "10/d"])("rejects %s", (raw) => {
    expect(captureUsage(() => parseQuota(raw)).message).toContain("--quota");
  });
});

describe("small parsers", () => {
  it("parseList trims and drops empties", () => {
    expect(parseList(" agent:a, agent:b,,")).toEqual(["agent:a", "agent:b"]);
  });

  it("parsePositiveInt refuses zero, negatives and fractions", () => {
    expect(parsePositiveInt("3600", "expires-in")).toBe(3600);
    for (const raw of ["0", "-1", "1.5", "1e3", ""]) expect(() => parsePositiveInt(raw, "x")).toThrow(UsageError);
    expect(parseNonNegativeInt("0", "grace")).toBe(0);
  });

  it("parseJsonObject wants an object", () => {
    expect(parseJsonObject('{"team":"ml"}', "metadata")).toEqual({ team: "ml" });
    for (const raw of ["[1]", "null", "3", "{bad"]) expect(() => parseJsonObject(raw, "metadata")).toThrow(UsageError);
  });
});

describe("keyFields", () => {
  it("maps flags to the API's fields", () => {
    expect(
      keyFields({
        name: "ci",
        scopes: "agent:a,agent:b",
        "expires-in": "3600",
        "rate-limit": "100/60s",
        quota: "10000/day",
        "ip-allow": "10.0.0.0/8, 192.168.1.5/32",
      }),
    ).toEqual({
      name: "ci",
      scopes: ["agent:a", "agent:b"],
      expires_in: 3600,
      rate_limit: { limit: 100, window_s: 60 },
      quota: { limit: 10000, period: "day" },
      ip_allow: ["10.0.0.0/8", "192.168.1.5/32"],
    });
  });

  it("turns --no-* into nulls that clear", () => {
    const cleared = { "no-expiry": true, "no-rate-limit": true, "no-quota": true, "no-ip-allow": true };
    expect(keyFields(cleared)).toEqual({ expires_at: null, rate_limit: null, quota: null, ip_allow: null });
  });

  it("refuses contradictory flags", () => {
    expect(() => keyFields({ "expires-in": "1", "expires-at": "2030-01-01T00:00:00Z" })).toThrow("cannot be combined");
    expect(() => keyFields({ "rate-limit": "1/s", "no-rate-limit": true })).toThrow("cannot be combined");
    expect(() => keyFields({ scopes: " , " })).toThrow("at least one scope");
  });
});

function captureUsage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error("expected a UsageError");
}
