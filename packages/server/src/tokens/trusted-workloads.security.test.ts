import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClusterIssuer, startWorkloadKeyward, type WorkloadKeyward } from "../../test-support/cluster-issuer.js";
import { frozenClock } from "../clock.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

let env: WorkloadKeyward;
const clock = frozenClock(Date.now());

async function bearer(assertion: string) {
  const res = await fetch(`${env.kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
  });
  const text = await res.text();
  // The refusal never echoes the token, nor any part of it.
  for (const part of assertion.split(".")) if (part.length > 8) expect(text).not.toContain(part);
  return {
    status: res.status,
    body: JSON.parse(text) as { error: string; error_description?: string; access_token?: string },
  };
}

/** Refused as RFC 6749 §5.2 invalid_grant, the description containing `why`. */
async function refused(assertion: string, why: RegExp) {
  const r = await bearer(assertion);
  expect(r.status).toBe(400);
  expect(r.body.error).toBe("invalid_grant");
  expect(r.body.error_description).toMatch(why);
  expect(r.body.access_token).toBeUndefined();
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

beforeAll(async () => {
  env = await startWorkloadKeyward({ clock });
});
afterAll(async () => {
  await env?.close();
});

describe("workload identity attacks are refused", () => {
  it("a subject that only resembles the allowed one: suffix, prefix, case, another namespace", async () => {
    for (const [ns, sa] of [
      ["research", "agent-evil"],
      ["research", "agentx"],
      ["research", "evil-agent"],
      ["research", "Agent"],
      ["Research", "agent"],
      ["research-evil", "agent"],
      ["evil", "agent"],
    ] as const) {
      await refused(env.cluster.serviceAccountToken(ns, sa), /matches no trusted workload rule/);
    }
    // The right text with extra: a trailing space, a longer sub built to contain the allowed one.
    const nowS = Math.floor(clock.now() / 1000);
    for (const sub of [
      "system:serviceaccount:research:agent ",
      "xsystem:serviceaccount:research:agent",
      "system:serviceaccount:research:agent:extra",
    ]) {
      await refused(env.cluster.sign({ sub, aud: "keyward", exp: nowS + 600 }), /matches no trusted workload rule/);
    }
    // A CI claim that is the right one plus more, or a string where a value must match exactly.
    const job = { sub: "repo:acme/agents", aud: "keyward-ci", exp: nowS + 600 };
    await refused(env.cluster.sign({ ...job, repository: "acme/agents-evil", ref: "refs/heads/main" }), /no trusted/);
    await refused(env.cluster.sign({ ...job, repository: "acme/agents", ref: "refs/heads/main-evil" }), /no trusted/);
    await refused(env.cluster.sign({ ...job, repository: "Acme/Agents", ref: "refs/heads/main" }), /no trusted/);
    await refused(env.cluster.sign({ ...job, repository: "acme/agents" }), /no trusted/);
  });

  it("a token for another audience (the cluster API's own)", async () => {
    await refused(
      env.cluster.serviceAccountToken("research", "agent", { aud: ["https://kubernetes.default.svc"] }),
      /another audience/,
    );
    // The CI audience does not make a service account a CI job, nor the reverse.
    await refused(env.cluster.serviceAccountToken("research", "agent", { aud: "keyward-ci" }), /no trusted workload/);
  });

  it("an expired token, and one not valid yet", async () => {
    const nowS = Math.floor(clock.now() / 1000);
    await refused(env.cluster.serviceAccountToken("research", "agent", { exp: nowS - 1 }), /expired/);
    await refused(
      env.cluster.serviceAccountToken("research", "agent", { nbf: nowS + 600, exp: nowS + 1200 }),
      /not valid yet/,
    );
  });

  it("an issuer not configured, even with the right subject and audience", async () => {
    const stranger = await startClusterIssuer();
    try {
      await refused(stranger.serviceAccountToken("research", "agent"), /issuer is not trusted/);
      // Naming a trusted issuer does not borrow its trust: the stranger's key does not verify.
      const forged = stranger.serviceAccountToken("research", "agent", { iss: env.cluster.url });
      await refused(forged, /signature does not verify/);
    } finally {
      await stranger.close();
    }
  });

  it("claims matching one rule's issuer but another rule's subject", async () => {
    // ops/runner is `other`'s subject on otherCluster; signed by cluster, it is nobody.
    await refused(env.cluster.serviceAccountToken("ops", "runner"), /matches no trusted workload rule/);
    // And research/agent signed by otherCluster is not research.
    await refused(env.otherCluster.serviceAccountToken("research", "agent"), /matches no trusted workload rule/);
  });

  it("alg none, and HS256 keyed with the issuer's public key", async () => {
    const nowS = Math.floor(clock.now() / 1000);
    const claims = { sub: "system:serviceaccount:research:agent", aud: "keyward", exp: nowS + 600 };
    await refused(env.cluster.sign(claims, { alg: "none" }), /asymmetric algorithm/);
    await refused(env.cluster.sign(claims, { alg: "HS256" }), /asymmetric algorithm/);
    // Built by hand too, with a kid the JWKS knows.
    const input = `${b64({ alg: "HS256", typ: "JWT", kid: env.cluster.kid() })}.${b64({ iss: env.cluster.url, ...claims })}`;
    const mac = createHmac("sha256", env.cluster.publicPem()).update(input).digest("base64url");
    await refused(`${input}.${mac}`, /asymmetric algorithm/);
  });

  it("a jku header pointing at the attacker's keys is never followed", async () => {
    const nowS = Math.floor(clock.now() / 1000);
    const claims = { sub: "system:serviceaccount:research:agent", aud: "keyward", exp: nowS + 600 };
    await refused(env.cluster.sign(claims, { header: { jku: "http://127.0.0.1:1/keys" } }), /forbidden "jku" header/);
  });

  it("a rotated signing key at the issuer: new tokens verify (JWKS refetched), old-key tokens do not", async () => {
    const before = env.cluster.serviceAccountToken("research", "agent");
    expect((await bearer(before)).status).toBe(200);
    // Earlier tests sent unknown kids: the key set is refetched at most once per 5 s cooldown.
    clock.advance(6000);
    const hits = env.cluster.jwksHits;
    env.cluster.rotate();
    const after = env.cluster.serviceAccountToken("research", "agent");
    expect((await bearer(after)).status).toBe(200);
    expect(env.cluster.jwksHits).toBe(hits + 1);
    // The refetched set replaced the old one: a token signed with the retired key is refused.
    await refused(before, /signature does not verify/);
    await refused(env.cluster.serviceAccountToken("research", "agent", {}, { kid: "never-published" }), /signature/);
  });

  it("a workload token with an actor, or an audience, in RFC 8693 is refused; the grant needs its assertion", async () => {
    const sa = env.cluster.serviceAccountToken("research", "agent");
    const post = (params: Record<string, string>) =>
      fetch(`${env.kw.url}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(params).toString(),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: string } }));
    const base = { grant_type: TOKEN_EXCHANGE, subject_token: sa, subject_token_type: JWT_TYPE };
    expect(await post({ ...base, audience: "other" })).toMatchObject({
      status: 400,
      body: { error: "invalid_target" },
    });
    expect(
      await post({ ...base, actor_token: "kwk_x", actor_token_type: "urn:ietf:params:oauth:token-type:access_token" }),
    ).toMatchObject({
      status: 400,
      body: { error: "invalid_request" },
    });
    expect(await post({ grant_type: JWT_BEARER })).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    // Client authentication is optional for jwt-bearer, but a wrong one is not ignored.
    const wrongClient = { grant_type: JWT_BEARER, assertion: sa, client_id: "key_nope", client_secret: "kwk_nope" };
    expect(await post(wrongClient)).toMatchObject({ status: 401, body: { error: "invalid_client" } });
  });

  it("the assertion's size is bounded: 32 KiB at most, refused past it before any signature check", async () => {
    const nowS = Math.floor(clock.now() / 1000);
    const claims = { sub: "system:serviceaccount:research:agent", aud: "keyward", exp: nowS + 600 };
    const sized = (chars: number) => {
      const base = env.cluster.sign({ ...claims, pad: "" });
      return env.cluster.sign({ ...claims, pad: "x".repeat(Math.floor(((chars - base.length) * 3) / 4)) });
    };
    const within = sized(32 * 1024 - 200);
    expect(within.length).toBeLessThanOrEqual(32 * 1024);
    expect((await bearer(within)).status).toBe(200);
    const over = sized(32 * 1024 + 200);
    expect(over.length).toBeGreaterThan(32 * 1024);
    await refused(over, /too long/);
  });

  it("a rule whose agent was deleted mints nothing", async () => {
    expect((await env.kw.admin("DELETE", "/agents/ci")).status).toBeLessThan(300);
    const nowS = Math.floor(clock.now() / 1000);
    const job = { sub: "repo", aud: "keyward-ci", exp: nowS + 600, repository: "acme/agents", ref: "refs/heads/main" };
    await refused(env.cluster.sign(job), /agent does not exist/);
  });
});
