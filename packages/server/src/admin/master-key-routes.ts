import { z } from "zod";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Keyring } from "../crypto/keyring.js";
import { rewrapAll, type SealedColumn, sealedInventory } from "../crypto/master-key-rotation.js";
import { MasterKeyInventorySchema, MasterKeyRotationSchema } from "../crypto/master-key-schemas.js";
import { readJson } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { Db } from "../store/db.js";
import type { Actor } from "./admin-context.js";

/**
 * Master-key rotation through the running server, so it needs no key material on the admin's
 * side and no downtime: the server was started with the new key active and the old one in
 * KEYWARD_MASTER_KEY_PREVIOUS (see README.md), and rewraps with the keyring it already holds.
 */
const rotateBody = z.strictObject({});

export function registerMasterKeyRoutes(
  router: Router,
  deps: {
    db: Db;
    keyring: Keyring;
    columns: () => readonly SealedColumn[];
    audit: AuditSink;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
  },
): void {
  const { db, keyring, audit, requireAdmin } = deps;
  const inventory = () => sealedInventory(db, keyring, deps.columns(), new Set(keyring.keyIds));

  router.get(
    "/admin/v1/master-key",
    {
      operationId: "getMasterKeyInventory",
      summary: "Sealed values per master key",
      auth: ADMIN,
      tag: "master-key",
      responses: { 200: json(MasterKeyInventorySchema, "The inventory"), ...errors(401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, await inventory());
    },
  );

  router.post(
    "/admin/v1/master-key/rotate",
    {
      operationId: "rewrapMasterKey",
      summary: "Re-seal every value under the active master key",
      auth: ADMIN,
      tag: "master-key",
      body: rotateBody,
      responses: { 200: json(MasterKeyRotationSchema, "What was re-sealed"), ...errors(400, 401) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await readJson(ctx.req, rotateBody);
      const report = await rewrapAll(db, keyring, deps.columns());
      const after = await inventory();
      // Many transactions, one record: written after the work, durably, before the answer.
      await audit.record({
        actor: actor.principal,
        action: "master_key.rewrap",
        outcome: report.failed.length === 0 ? "success" : "failure",
        ...(actor.ip ? { ip: actor.ip } : {}),
        ...(actor.requestId ? { requestId: actor.requestId } : {}),
        details: {
          active_key_id: report.active_key_id,
          rewrapped: report.rewrapped,
          failed: report.failed.map((f) => f.record),
        },
      });
      const remaining = after.keys.filter((k) => !k.active && k.values > 0).reduce((n, k) => n + k.values, 0);
      sendJson(ctx.res, 200, { ...report, remaining, keys: after.keys, unreadable: after.unreadable });
    },
  );
}
