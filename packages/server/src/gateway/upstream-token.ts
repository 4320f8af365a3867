import { randomUUID } from "node:crypto";

export interface TokenSigner {
  sign(claims: Record<string, unknown>, typ?: string): string;
}

/**
 * Mints the short-lived JWT the upstream sees instead of the caller's credential (SPEC §4):
 * `aud` = the agent, `sub` = the caller, all of the caller's scopes, `exp` ≤ 5 minutes.
 *
 * Signing ES256 on every request would cost more than the rest of the checks together, so a token
 * is reused for one fifth of its lifetime (it then still has ≥ 4/5 of its life left when the
 * upstream gets it). Any change to the key drops its tokens at once, so a reused token never
 * carries stale scopes.
 */
export function createUpstreamTokens(deps: {
  signer: TokenSigner;
  issuer: () => string;
  ttlS: number;
  onMint?: () => void;
}) {
  const byKey = new Map<string, Map<string, { token: string; reuseUntil: number }>>();
  const ttlMs = deps.ttlS * 1000;
  const reuseMs = Math.floor(ttlMs / 5);

  return {
    get(caller: { keyId: string; owner: string; scopes: readonly string[] }, agent: string, now: number): string {
      let perAgent = byKey.get(caller.keyId);
      const hit = perAgent?.get(agent);
      if (hit && hit.reuseUntil > now) return hit.token;
      const iat = Math.floor(now / 1000);
      const token = deps.signer.sign({
        iss: deps.issuer(),
        sub: caller.owner,
        aud: agent,
        scope: caller.scopes.join(" "),
        client_id: caller.keyId,
        iat,
        exp: iat + deps.ttlS,
        jti: randomUUID(),
      });
      deps.onMint?.();
      if (!perAgent) {
        if (byKey.size >= 100_000) byKey.clear();
        perAgent = new Map();
        byKey.set(caller.keyId, perAgent);
      }
      perAgent.set(agent, { token, reuseUntil: now + reuseMs });
      return token;
    },
    forgetKey(keyId: string): void {
      byKey.delete(keyId);
    },
    clear(): void {
      byKey.clear();
    },
  };
}

export type UpstreamTokens = ReturnType<typeof createUpstreamTokens>;
