import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OidcIssuer, startOidcIssuer } from "../../test-support/oidc-issuer.js";
import { startUsersFixture, type UsersFixture } from "../../test-support/users/users-fixture.js";
import { createLogger } from "../ops/logger.js";
import { createTrustedIssuers } from "./trusted-issuers.js";

/**
 * A deployment with one trusted issuer and no `user_prefix`, as configured before prefixes
 * existed: its users keep their `user:<sub>` ids, and so the credentials stored under them; the
 * server says at start which setting would separate them (docs/operations.md).
 */

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

let f: UsersFixture;
let idp: OidcIssuer;
let dir: string;
const logged: string[] = [];

beforeAll(async () => {
  idp = await startOidcIssuer();
  dir = mkdtempSync(join(tmpdir(), "kw-idp-legacy-"));
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_issuers: [{ issuer: idp.url, jwks_uri: idp.jwksUri, audience: "keyward", scopes: ["agent:*"] }],
    }),
  );
  const logger = createLogger({ level: "warn", destination: { write: (line: string) => void logged.push(line) } });
  f = await startUsersFixture({}, { configFile, logger });
});
afterAll(async () => {
  await f?.close();
  await idp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("one trusted issuer without user_prefix", () => {
  it("warns at start, naming the setting", () => {
    const warnings = logged.map((l) => JSON.parse(l) as { level: number; msg: string });
    const ours = warnings.filter((w) => w.msg.includes("trusted_issuers[0].user_prefix is not set"));
    expect(ours).toHaveLength(1);
    expect(ours[0]?.msg).toContain(idp.url);
    expect(ours[0]?.msg).toContain("share_user_ids_with_keys");
  });

  it("keeps user:<sub>, and the credentials already stored under it", async () => {
    const agent = await f.agent(["cloud_ak"]);
    expect((await f.adminPut("alice", "cloud_ak", "AK-STORED-BEFORE")).status).toBe(201);
    const res = await fetch(`${f.kw.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: TOKEN_EXCHANGE,
        subject_token: idp.sign({ sub: "alice", aud: "keyward" }),
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        audience: agent.name,
      }).toString(),
    });
    expect(res.status).toBe(200);
    const userToken = ((await res.json()) as { access_token: string }).access_token;
    expect(decodeJwt(userToken).sub).toBe("user:alice");
    const r = await f.tools(agent.key, { user_token: userToken, names: ["cloud_ak"] });
    expect(r.body).toEqual({ credentials: { cloud_ak: "AK-STORED-BEFORE" } });
  });
});

describe("createTrustedIssuers", () => {
  const base = {
    jwks_uri: "https://idp.example/jwks",
    audience: "keyward",
    subject_claim: "sub",
    scopes: [],
    algorithms: ["RS256" as const],
    share_user_ids_with_keys: false,
  };

  it("warns only for an issuer left unprefixed without opting in", () => {
    const warned: string[] = [];
    const warn = (m: string) => void warned.push(m);
    createTrustedIssuers({
      issuers: [{ ...base, issuer: "https://x.example", user_prefix: "x." }],
      now: Date.now,
      warn,
    });
    createTrustedIssuers({
      issuers: [{ ...base, issuer: "https://x.example", share_user_ids_with_keys: true }],
      now: Date.now,
      warn,
    });
    expect(warned).toEqual([]);
    createTrustedIssuers({ issuers: [{ ...base, issuer: "https://x.example" }], now: Date.now, warn });
    expect(warned).toHaveLength(1);
  });

  it("refuses, for any caller, issuers whose ids would collide", () => {
    const make = () =>
      createTrustedIssuers({
        issuers: [
          { ...base, issuer: "https://x.example", user_prefix: "idp." },
          { ...base, issuer: "https://y.example", user_prefix: "idp." },
        ],
        now: Date.now,
      });
    expect(make).toThrow(/user_prefix "idp\." clashes/);
  });
});
