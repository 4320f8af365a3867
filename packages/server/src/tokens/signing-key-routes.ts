import type { Actor } from "../admin/admin-context.js";
import { auditedChange, changeEvent } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { SigningKeys } from "../crypto/signing-keys.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { Db } from "../store/db.js";
import { SigningKeyRotationSchema, SigningKeysSchema } from "./tokens-schemas.js";

/**
 * `GET /admin/v1/signing-keys` and `POST /admin/v1/signing-keys/rotate`: new tokens are signed
 * with the new key at once; the old key stays in JWKS until every token it signed has expired.
 */
export function registerSigningKeyRoutes(
  router: Router,
  deps: {
    db: Db;
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

  router.get(
    "/admin/v1/signing-keys",
    {
      operationId: "listSigningKeys",
      summary: "The token signing keys",
      auth: ADMIN,
      tag: "tokens",
      responses: { 200: json(SigningKeysSchema, "The keys"), ...errors(401) },
    },
    async (ctx) => {
      await deps.requireAdmin(ctx);
      sendJson(ctx.res, 200, view());
    },
  );

  router.post(
    "/admin/v1/signing-keys/rotate",
    {
      operationId: "rotateSigningKey",
      summary: "Sign new tokens with a new key; the old one verifies until its tokens expire",
      auth: ADMIN,
      tag: "tokens",
      responses: { 201: json(SigningKeyRotationSchema, "The keys after rotation"), ...errors(401) },
    },
    async (ctx) => {
      const actor = await deps.requireAdmin(ctx);
      ctx.req.resume();
      const previous = deps.signingKeys.activeKid;
      const { kid } = await auditedChange(
        deps.db,
        deps.audit,
        async (tx) => {
          const rotated = await deps.signingKeys.rotateIn(tx, deps.maxTokenLifetimeS);
          return {
            result: rotated,
            event: changeEvent(actor, "signing_key.rotate", rotated.kid, {
              previous,
              retire_after_s: deps.maxTokenLifetimeS,
            }),
            changes: [{ kind: "signing_key", ref: rotated.kid }],
          };
        },
        { feed: deps.changes, actor },
      );
      // This replica's own handler already reloaded on publish; reload again in case it ran first.
      await deps.signingKeys.reload();
      if (deps.signingKeys.activeKid !== kid) throw new Error("the rotated signing key is not active after reload");
      sendJson(ctx.res, 201, { ...view(), previous_kid: previous, previous_removed_after_s: deps.maxTokenLifetimeS });
    },
  );
}
