import { randomUUID } from "node:crypto";
import { type BoundedCache, createBoundedCache } from "@keyward/sdk/cache";

export interface MintedToken {
  jti: string;
  sub: string;
  aud: string;
  client_id: string;
  exp: number;
}

interface Slot {
  token: string;
  reuseUntil: number;
  jti: string;
  /** What `get` answers while the token is reused: built once, so a reuse allocates nothing. */
  reused: UpstreamToken;
}

export interface UpstreamToken {
  readonly token: string;
  /** `Bearer <token>`, serialized once per token: the header the upstream is sent. */
  readonly authorization: string;
  /** Set when the token was signed just now (not reused). */
  readonly fresh: MintedToken | undefined;
}

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
  /** Hears every newly signed token (not reuses): metrics and the audit trail. */
  onMint?: (t: MintedToken) => void;
}) {
  /**
   * Where each cached token sits, so one revoked by its jti is found without a scan. It holds
   * exactly the jtis of the cached tokens: evictions from the bounded caches below report here.
   */
  const byJti = new Map<string, { keyId: string; slot: string }>();
  const dropGroup = (perAgent: BoundedCache<string, Slot> | undefined): void => {
    for (const entry of perAgent?.values() ?? []) byJti.delete(entry.jti);
  };
  // Full caches drop their least recently used key group, or slot in a group, one at a time.
  const byKey = createBoundedCache<string, BoundedCache<string, Slot>>({
    max: 100_000,
    onEvict: (_keyId, group) => dropGroup(group),
  });
  const newGroup = () =>
    createBoundedCache<string, Slot>({ max: 10_000, onEvict: (_slot, entry) => byJti.delete(entry.jti) });
  const ttlMs = deps.ttlS * 1000;
  const reuseMs = Math.floor(ttlMs / 5);

  return {
    /**
     * The token to send upstream (and its `Authorization` value), and whether it was signed just
     * now (`fresh`) or reused. A reused answer is the same object each time: never mutate it.
     */
    get(
      caller: {
        keyId: string;
        owner: string;
        scopes: readonly string[];
        act?: unknown;
        cacheKey?: string;
        /** Epoch seconds the token must not outlive (the caller's own token's expiry). */
        expCap?: number;
      },
      agent: string,
      now: number,
    ): UpstreamToken {
      // Grouped by the client key, so any change to the key (scopes narrowed, revoked) drops every
      // token minted for it, its own and those of access tokens resting on it. Within the group a
      // token caller is cached by its jti: its act chain and expiry are its own.
      let perAgent = byKey.get(caller.keyId);
      const slot = caller.cacheKey === undefined ? agent : `${caller.cacheKey} ${agent}`;
      const hit = perAgent?.get(slot);
      if (hit && hit.reuseUntil > now) return hit.reused;
      const iat = Math.floor(now / 1000);
      const minted: MintedToken = {
        jti: randomUUID(),
        sub: caller.owner,
        aud: agent,
        client_id: caller.keyId,
        exp: caller.expCap === undefined ? iat + deps.ttlS : Math.min(iat + deps.ttlS, caller.expCap),
      };
      const token = deps.signer.sign({
        iss: deps.issuer(),
        sub: minted.sub,
        aud: minted.aud,
        scope: caller.scopes.join(" "),
        client_id: minted.client_id,
        iat,
        exp: minted.exp,
        jti: minted.jti,
        ...(caller.act !== undefined ? { act: caller.act } : {}),
      });
      deps.onMint?.(minted);
      if (!perAgent) {
        perAgent = newGroup();
        byKey.set(caller.keyId, perAgent);
      }
      if (hit) byJti.delete(hit.jti);
      byJti.set(minted.jti, { keyId: caller.keyId, slot });
      const authorization = `Bearer ${token}`;
      perAgent.set(slot, {
        token,
        jti: minted.jti,
        reuseUntil: now + Math.min(reuseMs, Math.floor((minted.exp * 1000 - now) / 5)),
        reused: { token, authorization, fresh: undefined },
      });
      return { token, authorization, fresh: minted };
    },
    /** An upstream token revoked by its jti (`/oauth/revoke`) is never sent again. */
    forgetJti(jti: string): void {
      const at = byJti.get(jti);
      if (at === undefined) return;
      byJti.delete(jti);
      byKey.get(at.keyId)?.delete(at.slot);
    },
    forgetKey(keyId: string): void {
      dropGroup(byKey.get(keyId));
      byKey.delete(keyId);
    },
    clear(): void {
      byKey.clear();
      byJti.clear();
    },
  };
}

export type UpstreamTokens = ReturnType<typeof createUpstreamTokens>;
