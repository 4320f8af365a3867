import { describe, expect, it } from "vitest";
import { createUpstreamTokens } from "./upstream-token.js";

/** The upstream-token reuse cache: signing counted through a signer that numbers its tokens. */
function tokens() {
  let signed = 0;
  const upstream = createUpstreamTokens({
    signer: { sign: () => `token-${++signed}` },
    issuer: () => "https://keyward.test",
    ttlS: 300,
  });
  return { upstream, signed: () => signed };
}

const caller = (keyId: string) => ({ keyId, owner: "alice", scopes: ["read"] });

describe("createUpstreamTokens", () => {
  it("reuses a token for a fifth of its lifetime, then signs a new one", () => {
    const { upstream, signed } = tokens();
    const first = upstream.get(caller("key_1"), "billing", 1_000_000);
    expect(first.fresh?.aud).toBe("billing");
    expect(upstream.get(caller("key_1"), "billing", 1_000_000 + 59_999)).toEqual({
      token: first.token,
      authorization: `Bearer ${first.token}`,
      fresh: undefined,
    });
    expect(upstream.get(caller("key_1"), "billing", 1_000_000 + 60_000).token).not.toBe(first.token);
    expect(signed()).toBe(2);
  });

  it("a key with many agents evicts its least recently used slot, not all of them", () => {
    const { upstream, signed } = tokens();
    const now = 1_000_000;
    upstream.get(caller("key_1"), "agent-hot", now);
    for (let i = 0; i < 10_000; i++) {
      upstream.get(caller("key_1"), "agent-hot", now);
      upstream.get(caller("key_1"), `agent-${i}`, now);
    }
    const before = signed();
    upstream.get(caller("key_1"), "agent-hot", now);
    upstream.get(caller("key_1"), "agent-9999", now);
    expect(signed()).toBe(before); // both still cached: nothing was cleared wholesale
    upstream.get(caller("key_1"), "agent-0", now);
    expect(signed()).toBe(before + 1); // the least recently used slot was the one evicted
  });

  it("a token revoked by jti is not reused, also after evictions elsewhere; a key change drops its tokens", () => {
    const { upstream } = tokens();
    const now = 1_000_000;
    const a = upstream.get(caller("key_1"), "billing", now);
    const b = upstream.get(caller("key_2"), "billing", now);
    for (let i = 0; i < 10_001; i++) upstream.get(caller("key_3"), `agent-${i}`, now);
    upstream.forgetJti(a.fresh?.jti as string);
    expect(upstream.get(caller("key_1"), "billing", now).fresh).toBeDefined();
    upstream.forgetKey("key_2");
    expect(upstream.get(caller("key_2"), "billing", now).token).not.toBe(b.token);
  });
});
