import { describe, expect, it } from "vitest";
import { type Key, keyTable, quotaText, rateLimitText } from "./commands/keys.js";
import { formatRecord, formatTable, shortTime, truncate } from "./table.js";

describe("formatTable", () => {
  it("aligns columns and leaves no trailing spaces", () => {
    const out = formatTable(
      ["NAME", "UPSTREAM"],
      [
        ["billing", "http://billing:9000"],
        ["a", "http://a"],
      ],
    );
    expect(out).toBe(["NAME     UPSTREAM", "billing  http://billing:9000", "a        http://a", ""].join("\n"));
  });

  it("pads a short last column nowhere", () => {
    const out = formatTable(["A", "B"], [["x", ""]]);
    expect(out.split("\n").every((line) => line === line.trimEnd())).toBe(true);
  });

  it("keeps one row per line when a value holds control characters", () => {
    const out = formatTable(["NAME", "DESCRIPTION"], [["a", "line1\nline2\u001b[31m"]]);
    expect(out.split("\n")).toHaveLength(3);
    expect(out).not.toContain("\u001b");
  });
});

describe("formatRecord", () => {
  it("aligns labels", () => {
    expect(
      formatRecord([
        ["id", "key_1"],
        ["last used", "-"],
      ]),
    ).toBe("id         key_1\nlast used  -\n");
  });
});

describe("shortTime", () => {
  it("shows minutes in UTC", () => {
    expect(shortTime("2025-03-04T05:06:07.891Z")).toBe("2025-03-04 05:06");
    expect(shortTime("2025-03-04T07:06:07+02:00")).toBe("2025-03-04 05:06");
  });

  it("shows a dash for no time and leaves unparsable text alone", () => {
    expect(shortTime(null)).toBe("-");
    expect(shortTime(undefined)).toBe("-");
    expect(shortTime("soon")).toBe("soon");
  });
});

describe("truncate", () => {
  it("cuts with an ellipsis only when needed", () => {
    expect(truncate("abcdef", 6)).toBe("abcdef");
    expect(truncate("abcdefg", 6)).toBe("abcde…");
  });
});

describe("key formatting", () => {
  const key: Key = {
    id: "key_01",
    prefix: "kwk_AbC",
    owner: "consumer:acme",
    name: null,
    canary: false,
    scopes: ["agent:a", "agent:b"],
    status: "active",
    expires_at: null,
    rate_limit: { limit: 100, window_s: 60 },
    quota: { limit: 10000, period: "day" },
    ip_allow: null,
    rotated_to: null,
    created_at: "2025-01-02T03:04:05Z",
    updated_at: "2025-01-02T03:04:05Z",
    revoked_at: null,
    last_used_at: "2025-01-03T10:20:30Z",
  };

  it("writes limits the way the flags take them", () => {
    expect(rateLimitText(key.rate_limit)).toBe("100/60s");
    expect(quotaText(key.quota)).toBe("10000/day");
    expect(rateLimitText(null)).toBe("-");
  });

  it("lists keys as a table", () => {
    expect(keyTable([key])).toBe(
      [
        "ID      PREFIX   OWNER          NAME  SCOPES           STATUS  EXPIRES  LAST USED",
        "key_01  kwk_AbC  consumer:acme  -     agent:a,agent:b  active  -        2025-01-03 10:20",
        "",
      ].join("\n"),
    );
    expect(keyTable([])).toBe("no keys\n");
  });
});
