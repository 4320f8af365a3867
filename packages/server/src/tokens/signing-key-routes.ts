import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { SigningKeys } from "../crypto/signing-keys.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";

/**
 * `GET /admin/v1/signing-keys` and `POST /admin/v1/signing-keys/rotate`: new tokens are signed
 * with the new key at once; the old key stays in JWKS until every token it signed has expired.
 */
export function registerSigningKeyRoutes(
  router: Router,
  deps: {
    signingKeys: SigningKeys;
    audit: AuditSink;
    changes: ChangeFeed;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
    /** The longest any token lives: how long a retired key must stay verifiable. */
    maxTokenLifetimeS: number;
  },
): void {
  const view = () => ({
    active_kid: deps.signingKeys.activeKid,
    keys: deps.signingKeys
      .jwks()
      .keys.map((k) => ({ kid: k.kid, alg: k.alg, active: k.kid === deps.signingKeys.activeKid })),
  });

  router.get("/admin/v1/signing-keys", async (ctx) => {
    await deps.requireAdmin(ctx);
    sendJson(ctx.res, 200, view());
  });

  router.post("/admin/v1/signing-keys/rotate", async (ctx) => {
    const actor = await deps.requireAdmin(ctx);
    ctx.req.resume();
    const previous = deps.signingKeys.activeKid;
    const { kid } = await deps.signingKeys.rotate(deps.maxTokenLifetimeS);
    await deps.audit.record({
      actor: actor.principal,
      action: "signing_key.rotate",
      target: kid,
      outcome: "success",
      ...(actor.ip ? { ip: actor.ip } : {}),
      requestId: ctx.requestId,
      details: { previous, retire_after_s: deps.maxTokenLifetimeS },
    });
    await deps.changes.publish([{ kind: "signing_key", ref: kid }]);
    sendJson(ctx.res, 201, { ...view(), previous_kid: previous, previous_removed_after_s: deps.maxTokenLifetimeS });
  });
}
