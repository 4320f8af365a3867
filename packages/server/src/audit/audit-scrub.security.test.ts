import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { testEngines } from "../test-support/databases.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";
import { REDACTED, scrubDetails, scrubString } from "./audit-scrub.js";

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
});
