import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import { MAX_STRING_CHARS, scrubString } from "../ops/text-scrub.js";
import type { Db } from "../store/db.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";
import { FIELD_LIMITS, REDACTED, scrubDetails, scrubField } from "./audit-scrub.js";

// Planted canaries: "CANARY" sits past the 12 characters a masked value keeps, so if it reaches
// the table or a response, so would the secret.
const KEY = "kwk_Pre0Fix1CANARY0123456789ABCDEFGHIJabcd";
const ADMIN = "kwa_Pre0Fix2CANARY0123456789ABCDEFGHIJabcd";
const REFRESH = "kwr_Pre0Fix3CANARY0123456789ABCDEFGHIJabcd";
const JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.CANARYsignatureCANARYsignature";
const CANARY = /CANARY/;

describe("scrubDetails", () => {
  it("redacts secret-named keys at any depth, whatever they hold", () => {
    const out = scrubDetails({
      name: "stripe",
      value: "plain",
      nested: { Authorization: "Bearer x", list: [{ client_secret: { deep: 1 } }, { api_key: 1, apiKey: 2 }] },
      credential_value: "x",
      password: "hunter2",
      refresh_token: "x",
    });
    expect(out).toEqual({
      name: "stripe",
      value: REDACTED,
      nested: { Authorization: REDACTED, list: [{ client_secret: REDACTED }, { api_key: REDACTED, apiKey: REDACTED }] },
      credential_value: REDACTED,
      password: REDACTED,
      refresh_token: REDACTED,
    });
  });

  it("masks Keyward secrets and JWTs inside any string, keeping a recognisable prefix", () => {
    expect(scrubString(`key ${KEY} used`)).toBe("key kwk_Pre0Fix1… used");
    expect(scrubString(JWT)).toBe("eyJhbGciOiJF…");
    // A key prefix as stored (kwk_ + 8) is not a secret and stays readable.
    expect(scrubString("kwk_AbCd1234")).toBe("kwk_AbCd1234");
  });
});

/** What must never reach a record as itself: C0/C1 controls, DEL, bidi controls and marks, separators, lone surrogates. */
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe("bounds on what an outsider puts in a record (issue 18, finding 3)", () => {
  it("escapes controls and bidi overrides, isolates and marks as \\uXXXX", () => {
    expect(scrubString("agent:\u202eevil\u2066x\u2069\u200f\u061c")).toBe(
      "agent:\\u202eevil\\u2066x\\u2069\\u200f\\u061c",
    );
    expect(scrubString("a\nb\rc\u0000d\u007fe\u0085f\u2028")).toBe("a\\u000ab\\u000dc\\u0000d\\u007fe\\u0085f\\u2028");
    // Text in any script passes untouched.
    expect(scrubString("Zoë — 東京 🙂")).toBe("Zoë — 東京 🙂");
  });

  it("cuts every column to its stated length, and any other string to MAX_STRING_CHARS", () => {
    const long = "x".repeat(15 * 1024);
    for (const [field, max] of Object.entries(FIELD_LIMITS)) {
      expect(scrubField(field as keyof typeof FIELD_LIMITS, long)).toBe(`${"x".repeat(max)}…`);
    }
    expect(scrubString(long)).toHaveLength(MAX_STRING_CHARS + 1);
    // Never between the halves of a surrogate pair.
    expect(scrubField("code", `${"x".repeat(63)}🙂`)).toBe(`${"x".repeat(63)}…`);
  });

  it("any string comes out bounded, with nothing unsafe and no secret", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 3000 }), fc.integer({ min: 1, max: 1100 }), (s, max) => {
        const out = scrubString(s, max);
        expect(out.length).toBeLessThanOrEqual(max + 1);
        expect(UNSAFE.test(out)).toBe(false);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.string({ unit: "binary", maxLength: 200 }),
        (a, b) => {
          expect(scrubString(`${a}${KEY}${b}`, 2000)).not.toMatch(CANARY);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("bounds a details object built from outsider input", () => {
    const out = scrubDetails({ names: ["y".repeat(20_000)], [`k${"\u202e".repeat(3)}`]: 1 });
    expect(out).toEqual({ names: [`${"y".repeat(MAX_STRING_CHARS)}…`], "k\\u202e\\u202e\\u202e": 1 });
  });
});

describe.each(testEngines)("audit secret hygiene on $name", ({ skip, open }) => {
  let db: Db;
  let audit: AuditLog;

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    audit = createAuditLog({ db, clock: frozenClock(), logger: silentLogger() });
  });
  afterEach(async () => {
    if (skip) return;
    await audit.close();
    await db.close();
  });

  it.skipIf(skip)("never stores a planted canary, in any column, and the chain still verifies", async () => {
    await audit.record({
      actor: `consumer:${KEY}`,
      action: "key.create",
      target: ADMIN,
      outcome: "success",
      requestId: `req-${REFRESH}`,
      details: {
        secret: KEY,
        token: JWT,
        note: `rotated from ${KEY} to ${REFRESH}`,
        headers: { authorization: `Bearer ${ADMIN}`, "x-forwarded-for": "10.0.0.1" },
        history: [{ key: KEY }, JWT],
        [KEY]: "a key as a field name",
      },
    });
    audit.recordLater({ actor: ADMIN, action: "gateway.deny", outcome: "denied", details: { presented: KEY } });
    await audit.flush();

    const rows = await db.query<Record<string, unknown>>("SELECT * FROM audit_events");
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(JSON.stringify(row)).not.toMatch(CANARY);

    const { events } = await audit.list({ limit: 10 });
    expect(JSON.stringify(events)).not.toMatch(CANARY);
    expect(events[1]).toMatchObject({
      actor: "consumer:kwk_Pre0Fix1…",
      target: "kwa_Pre0Fix2…",
      request_id: "req-kwr_Pre0Fix3…",
      details: {
        secret: REDACTED,
        token: REDACTED,
        note: "rotated from kwk_Pre0Fix1… to kwr_Pre0Fix3…",
        headers: { authorization: REDACTED, "x-forwarded-for": "10.0.0.1" },
        history: [{ key: "kwk_Pre0Fix1…" }, "eyJhbGciOiJF…"],
        "kwk_Pre0Fix1…": "a key as a field name",
      },
    });
    expect(await audit.verify()).toMatchObject({ ok: true, count: 2 });
  });

  it.skipIf(skip)("stores an outsider's 15 KB, bidi-laden fields cut and escaped, and the chain verifies", async () => {
    const evil = `\u202e${"n".repeat(15 * 1024)}\u0000\u2066`;
    audit.recordLater({
      actor: `user:${evil}`,
      action: "gateway.deny",
      target: `agent:${evil}`,
      outcome: "denied",
      code: evil,
      ip: evil,
      requestId: evil,
      details: { name: evil, list: [evil, evil] },
    });
    await audit.flush();
    const [row] = await db.query<Record<string, string | null>>(
      "SELECT actor, action, target, code, ip, request_id, details FROM audit_events",
    );
    let bytes = 0;
    for (const v of Object.values(row ?? {})) {
      expect(UNSAFE.test(v ?? "")).toBe(false);
      bytes += v?.length ?? 0;
    }
    expect(row?.actor?.startsWith("user:\\u202ennn")).toBe(true);
    expect(bytes).toBeLessThan(5 * 1024);
    expect(await audit.verify()).toMatchObject({ ok: true, count: 1 });
  });
});
