import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { type FakeTokenEndpoint, startFakeTokenEndpoint } from "../../test-support/fake-token-endpoint.js";
import type { Actor } from "../admin/admin-context.js";
import { createAgentsStore } from "../agents/agents-store.js";
import { type AuditLog, createAuditLog } from "../audit/audit-log.js";
import { frozenClock } from "../clock.js";
import { createLocalChangeFeed } from "../cluster/change-feed.js";
import { createIntegrityKeys } from "../crypto/integrity-keys.js";
import { createKeyring } from "../crypto/keyring.js";
import { silentLogger } from "../ops/logger.js";
import { createMetrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { type CredentialsModule, createCredentialsModule } from "./credentials-module.js";
import { PROVIDER_TYPE } from "./credentials-service.js";

/** One integrity root for every module built here, as one database has. */
const TEST_INTEGRITY = createIntegrityKeys(Buffer.alloc(32, 12));

/**
 * Token providers (SPEC §6) against a real OAuth token endpoint on loopback: the token is fetched
 * with the client's credentials, stored as a new version, refreshed when less than min(5 min, a
 * third of its lifetime) remains, fetched once however many ask, and never served expired.
 * The clock is frozen; `runDue()` plays the timer.
 */

const actor: Actor = { principal: "admin:test" };
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

for (const e of testEngines) if (e.skip) console.warn(`[token providers] ${e.name} skipped: ${e.skip}`);

describe.each(testEngines)("token providers on $name", ({ skip, open }) => {
  let db: Db;
  let audit: AuditLog;
  let fake: FakeTokenEndpoint;
  let clock: ReturnType<typeof frozenClock>;
  let kw: CredentialsModule;
  const modules: CredentialsModule[] = [];

  const build = () => {
    const m = createCredentialsModule(
      {
        db,
        keyring: createKeyring({ active: Buffer.alloc(32, 9) }),
        clock,
        audit,
        changes: createLocalChangeFeed(),
        logger: silentLogger(),
        metrics: createMetrics(),
        integrity: TEST_INTEGRITY,
      },
      { heartbeatMs: 60_000, tokenTimeoutMs: 2000, refreshTimers: { set: () => undefined, clear: () => {} } },
    );
    modules.push(m);
    return m;
  };
  const configure = (secret = "s3cret", scope: string | undefined = "api://x/.default") =>
    kw.credentials.set(
      actor,
      "azure",
      {
        type: PROVIDER_TYPE,
        token_url: fake.url,
        client_id: "app-1",
        client_secret: secret,
        ...(scope ? { scope } : {}),
      },
      undefined,
    );
  const served = async () => JSON.parse((await kw.views.get("bot")).full().body.toString());
  const meta = async () => (await kw.credentials.get("azure")).credential;

  beforeEach(async () => {
    if (skip) return;
    db = await open();
    clock = frozenClock(T0);
    audit = createAuditLog({ db, clock, logger: silentLogger() });
    fake = await startFakeTokenEndpoint({ clientId: "app-1", clientSecret: "s3cret" });
    kw = build();
    await createAgentsStore(db).insert(db, {
      name: "bot",
      upstream: "http://127.0.0.1:9",
      description: null,
      created_at: 0,
      updated_at: 0,
    });
    await configure();
    await kw.grants.replace(actor, "bot", { credentials: [{ name: "azure", mode: "read" }] });
  });
  afterEach(async () => {
    if (skip) return;
    for (const m of modules.splice(0)) m.close();
    await fake.close();
    await audit.close();
    await db.close();
  });

  describe.skipIf(skip)("fetching and refreshing", () => {
    it("fetches with the client's credentials and serves the token as a version with its expiry", async () => {
      expect((await meta()).row.status).toBe("pending");
      expect((await kw.providers.refreshNow("azure")).state).toBe("refreshed");
      const form = fake.requests[0]!.form;
      expect(Object.fromEntries(form)).toEqual({
        grant_type: "client_credentials",
        client_id: "app-1",
        client_secret: "s3cret",
        scope: "api://x/.default",
      });
      expect(await served()).toMatchObject({
        credentials: { azure: { value: "tok-1", version: 1, expires_at: new Date(T0 + 3600_000).toISOString() } },
      });
      const m = await meta();
      expect(m.row.status).toBe("ok");
      expect(m.expiresAt).toBe(T0 + 3600_000);
      expect(JSON.stringify(await kw.credentials.get("azure"))).not.toContain("s3cret");
    });

    it("refreshes when less than min(5 min, a third of the lifetime) remains; each token is a new version", async () => {
      await kw.providers.refreshNow("azure");
      expect(kw.providers.nextRefresh("azure")).toBe(T0 + 3600_000 - 5 * MIN);
      clock.set(T0 + 3600_000 - 5 * MIN - 1);
      await kw.providers.runDue();
      expect(fake.requests).toHaveLength(1);

      fake.behave({ kind: "token", expiresIn: 60 });
      clock.set(T0 + 3600_000 - 5 * MIN);
      expect((await kw.providers.runDue()).map((o) => o.state)).toEqual(["refreshed"]);
      expect((await served()).credentials.azure).toMatchObject({ value: "tok-2", version: 2 });
      const t1 = clock.now();
      // 60 s lifetime: a third (20 s) is less than 5 minutes.
      expect(kw.providers.nextRefresh("azure")).toBe(t1 + 40_000);
      expect((await kw.credentials.get("azure")).versions.map((v) => [v.version, v.source])).toEqual([
        [2, "token"],
        [1, "token"],
      ]);
    });

    it("fetches once however many ask at the same time, on this replica and on another", async () => {
      const release = fake.hold();
      const other = build();
      const calls = [1, 2, 3, 4, 5].map(() => kw.providers.refreshNow("azure"));
      await fake.arrivedCount(1);
      // The other replica finds the lease taken and does not call the endpoint.
      expect((await other.providers.refreshNow("azure")).state).toBe("leased");
      release();
      const outcomes = await Promise.all(calls);
      expect(new Set(outcomes.map((o) => o.state))).toEqual(new Set(["refreshed"]));
      expect(fake.requests).toHaveLength(1);
      expect((await meta()).row.current_version).toBe(1);
    });

    it("accepts expires_in as a string and assumes a short lifetime when it is missing", async () => {
      fake.behave({ kind: "token", expiresIn: "120" });
      await kw.providers.refreshNow("azure");
      expect((await meta()).expiresAt).toBe(T0 + 120_000);
      fake.behave({ kind: "token", expiresIn: undefined });
      await kw.providers.refreshNow("azure");
      expect((await meta()).expiresAt).toBe(T0 + 300_000);
    });

    it("discards a token fetched for a config that changed meanwhile, and fetches with the new one", async () => {
      const release = fake.hold();
      const pending = kw.providers.refreshNow("azure");
      await fake.arrivedCount(1);
      await configure("s3cret", "other-scope");
      release();
      expect(await pending).toEqual({ state: "refreshed", version: 1 });
      expect(fake.requests.map((r) => r.form.get("scope"))).toEqual(["api://x/.default", "other-scope"]);
      expect((await served()).credentials.azure.value).toBe("tok-2");
    });
  });

  describe.skipIf(skip)("when the token endpoint fails", () => {
    const failures: Array<[string, Parameters<FakeTokenEndpoint["behave"]>[0], RegExp]> = [
      ["is down (connection reset)", { kind: "reset" }, /unreachable|closed the connection/],
      ["answers 500", { kind: "status", status: 500, body: "oops" }, /answered 500/],
      ["answers HTML", { kind: "status", status: 200, body: "<html>", contentType: "text/html" }, /not JSON/],
      [
        "answers JSON without a token",
        { kind: "status", status: 200, body: '{"token_type":"Bearer"}' },
        /without an access_token/,
      ],
      [
        "answers a negative lifetime",
        { kind: "status", status: 200, body: '{"access_token":"t","expires_in":-5}' },
        /invalid expires_in/,
      ],
      [
        "answers a token type other than Bearer",
        { kind: "status", status: 200, body: '{"access_token":"t","token_type":"mac"}' },
        /token_type/,
      ],
    ];

    it.each(failures)(
      "keeps serving the old token with a clear status when it %s, then refuses it once expired",
      async (_, behaviour, why) => {
        fake.behave({ kind: "token", expiresIn: 600 });
        await kw.providers.refreshNow("azure");
        fake.behave(behaviour);
        clock.set(T0 + 400_000); // past the refresh point (600 - 200)
        const [outcome] = await kw.providers.runDue();
        expect(outcome?.state).toBe("failed");
        const m = await meta();
        expect(m.row.status).toBe("error");
        expect(m.row.status_message).toMatch(why);
        expect((await served()).credentials.azure.value).toBe("tok-1");
        // Retries back off: the next attempt is planned, not immediate.
        expect(kw.providers.nextRefresh("azure")!).toBeGreaterThan(clock.now());

        clock.set(T0 + 600_000);
        const body = await served();
        expect(body.credentials).toEqual({});
        expect(body.unavailable.azure).toEqual({
          code: "credential_unavailable",
          message: "credential azure is unavailable: its token expired and could not be refreshed",
        });
        expect(JSON.stringify(body)).not.toContain("tok-1");

        fake.behave({ kind: "token", expiresIn: 600 });
        clock.set(kw.providers.nextRefresh("azure")!);
        await kw.providers.runDue();
        expect((await meta()).row.status).toBe("ok");
        expect((await served()).credentials.azure).toMatchObject({ value: "tok-2", version: 2 });
      },
    );

    it("reports a rejected client (401 invalid_client) without ever showing the secret", async () => {
      await configure("wrong-secret");
      const outcome = await kw.providers.refreshNow("azure");
      expect(outcome).toEqual({ state: "failed", message: "token endpoint answered 401 (invalid_client)" });
      const m = await meta();
      expect(m.row.status_message).toBe("token endpoint answered 401 (invalid_client)");
      await audit.flush();
      const text = JSON.stringify(await audit.list({ limit: 100 }));
      expect(text).toContain("token_endpoint_error");
      expect(text).not.toContain("wrong-secret");
    });

    it("gives up on an endpoint that never answers, within the timeout", async () => {
      fake.behave({ kind: "hang" });
      const outcome = await kw.providers.refreshNow("azure");
      expect(outcome.state).toBe("failed");
      expect(outcome.message).toMatch(/no answer within 2000 ms/);
    });
  });
});
