import { describe, expect, it } from "vitest";
import { KeywardError } from "../errors.js";
import { parseCidrList } from "../gateway/cidr.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { type AccessClaims, createCallerAuth } from "./caller-auth.js";

const SECRET = "kwk_placeholder";

function entry(over: Partial<KeyEntry> = {}): KeyEntry {
  return {
    id: "key_a",
    prefix: "kwk_abcd",
    owner: "agent:w",
    scopes: [],
    scopeSet: new Set(),
    status: "active",
    expiresAt: null,
    rateLimit: null,
    quota: null,
    ipAllow: null,
    ipSeen: new Map(),
    lineage: "key_a",
    ...over,
  };
}

const claims = (over: Partial<AccessClaims> = {}): AccessClaims => ({
  iss: "i",
  sub: "agent:w",
  aud: "i",
  exp: 2e9,
  iat: 1,
  jti: "j",
  client_id: "key_a",
  scope: "",
  ...over,
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof KeywardError ? err.code : `unexpected ${String(err)}`;
  }
}

describe("caller authentication for API endpoints", () => {
  it("applies a key's IP allowlist to the key itself, believing X-Forwarded-For only from trusted proxies", async () => {
    const key = entry({ ipAllow: parseCidrList(["10.0.0.0/8"]) });
    const auth = createCallerAuth({
      lookupKey: async () => key,
      trustedProxies: parseCidrList(["127.0.0.1/32"]),
      now: () => 0,
    });
    const h = { "x-api-key": SECRET };
    expect(await code(auth(h, "10.1.2.3"))).toBe("ok");
    expect(await code(auth(h, "192.168.0.1"))).toBe("ip_denied");
    expect(await code(auth(h))).toBe("ip_denied");
    expect(await code(auth({ ...h, "x-forwarded-for": "10.9.9.9" }, "127.0.0.1"))).toBe("ok");
    expect(await code(auth({ ...h, "x-forwarded-for": "10.9.9.9" }, "192.168.0.1"))).toBe("ip_denied");
  });

  it("ends a token when its client key or any actor's key is no longer active", async () => {
    const keys: Record<string, KeyEntry> = { key_a: entry(), key_w: entry({ id: "key_w" }) };
    const delegated = claims({ sub: "consumer:c", act: { sub: "agent:w", client_id: "key_w" } });
    const auth = createCallerAuth({
      lookupKey: async () => null,
      checkToken: () => ({ ok: true, claims: delegated }),
      keyById: async (id) => keys[id] ?? null,
      now: () => 0,
    });
    const h = { authorization: "Bearer eyJ.x.y" };
    expect(await code(auth(h, "1.2.3.4"))).toBe("ok");
    keys.key_w = entry({ id: "key_w", status: "frozen" });
    expect(await code(auth(h, "1.2.3.4"))).toBe("invalid_token");
    keys.key_w = entry({ id: "key_w" });
    keys.key_a = entry({ status: "revoked" });
    expect(await code(auth(h, "1.2.3.4"))).toBe("invalid_token");
    delete keys.key_a;
    expect(await code(auth(h, "1.2.3.4"))).toBe("invalid_token");
  });

  it("sees a trusted issuer's user token as its user: no key behind its client id, actors still checked", async () => {
    const keys: Record<string, KeyEntry> = { key_w: entry({ id: "key_w", ipAllow: parseCidrList(["10.0.0.0/8"]) }) };
    let current = claims({ sub: "user:alice", client_id: "idp:abcdefghijklmnop", scope: "agent:* mcp:cloud" });
    const looked: string[] = [];
    const auth = createCallerAuth({
      lookupKey: async () => null,
      checkToken: () => ({ ok: true, claims: current }),
      keyById: async (id) => {
        looked.push(id);
        return keys[id] ?? null;
      },
      now: () => 0,
    });
    const h = { authorization: "Bearer eyJ.x.y" };
    expect(await auth(h, "1.2.3.4")).toMatchObject({ principal: "user:alice", scopes: ["agent:*", "mcp:cloud"] });
    expect(looked).toEqual([]);
    // Delegated on by agent w: w's key must stay live, but its IP allowlist is not the user's.
    current = { ...current, act: { sub: "agent:w", client_id: "key_w" } };
    expect(await code(auth(h, "1.2.3.4"))).toBe("ok");
    keys.key_w = entry({ id: "key_w", status: "revoked" });
    expect(await code(auth(h, "1.2.3.4"))).toBe("invalid_token");
    expect(looked).toEqual(["key_w", "key_w"]);
  });

  it("answers missing, malformed and unusable keys with their SPEC codes", async () => {
    const auth = createCallerAuth({ lookupKey: async () => "malformed", now: () => 0 });
    expect(await code(auth({}))).toBe("missing_credentials");
    expect(await code(auth({ "x-api-key": "nope" }))).toBe("invalid_key");
    expect(await code(auth({ authorization: "Bearer eyJ.a.b" }))).toBe("invalid_token");
    const frozen = createCallerAuth({ lookupKey: async () => entry({ status: "frozen" }), now: () => 0 });
    expect(await code(frozen({ "x-api-key": SECRET }))).toBe("key_frozen");
    const expired = createCallerAuth({ lookupKey: async () => entry({ expiresAt: 5 }), now: () => 10 });
    expect(await code(expired({ "x-api-key": SECRET }))).toBe("key_expired");
  });
});
