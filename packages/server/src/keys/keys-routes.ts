import { OWNER, SCOPE } from "@keyward/sdk/names";
import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import type { Clock } from "../clock.js";
import { invalidRequest } from "../errors.js";
import { readJson } from "../http/body.js";
import { parseCidr } from "../http/client-ip.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { QuotaPolicy, RateLimitPolicy } from "./key-entry.js";
import { IssuedKeySchema, type Key, KeyPageSchema, KeySchema, RotatedKeySchema } from "./keys-schemas.js";
import type { KeyPatch, KeysService } from "./keys-service.js";
import type { KeyRow } from "./keys-store.js";

/** A user id may not be only dots: `user:..` would make `/users/../credentials` a path elsewhere. */
export { OWNER };

const TEN_YEARS_S = 10 * 365 * 86_400;

const cidr = z.string().refine(
  (v) => {
    try {
      parseCidr(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: "must be an IP address or CIDR like 10.0.0.0/8" },
);

const limits = {
  name: z.string().min(1).max(128).optional(),
  scopes: z.array(z.string().regex(SCOPE, "scopes are printable strings without spaces")).max(100),
  expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  expires_in: z.number().int().min(1).max(TEN_YEARS_S).optional(),
  rate_limit: z
    .strictObject({ limit: z.number().int().min(1).max(1_000_000_000), window_s: z.number().int().min(1).max(86_400) })
    .nullable()
    .optional(),
  quota: z
    .strictObject({ limit: z.number().int().min(1).max(1e15), period: z.enum(["day", "month", "total"]) })
    .nullable()
    .optional(),
  ip_allow: z.array(cidr).min(1).max(100).nullable().optional(),
};

const createSchema = z.strictObject({
  owner: z.string().regex(OWNER, "must be consumer:<name>, agent:<name> or user:<id>"),
  ...limits,
  /** A tripwire (SPEC §10): never usable; any use answers as an unknown key and raises a critical alert. */
  canary: z.boolean().optional(),
});
const patchSchema = z.strictObject({ ...limits, name: limits.name.nullable(), scopes: limits.scopes.optional() });
/** The list's query; `owner` is checked by hand so its message names the accepted forms. */
const listQuery = pageSchema.extend({ owner: z.string().regex(OWNER).optional() });
const rotateSchema = z.strictObject({
  grace_s: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .optional(),
});

function expiry(clock: Clock, body: { expires_at?: string | null | undefined; expires_in?: number | undefined }) {
  if (body.expires_at !== undefined && body.expires_in !== undefined) {
    throw invalidRequest("body: give expires_at or expires_in, not both");
  }
  if (body.expires_in !== undefined) return clock.now() + body.expires_in * 1000;
  if (body.expires_at === null) return null;
  return body.expires_at === undefined ? undefined : Date.parse(body.expires_at);
}

/** The public shape of a key: never its hash, never its secret. */
export function keyView(k: KeyRow, now: number): Key {
  const expired = k.status === "active" && k.expires_at !== null && k.expires_at <= now;
  return {
    id: k.id,
    prefix: k.prefix,
    owner: k.owner,
    name: k.name,
    scopes: JSON.parse(k.scopes) as string[],
    status: expired ? "expired" : k.status,
    expires_at: iso(k.expires_at),
    rate_limit: k.rate_limit ? JSON.parse(k.rate_limit) : null,
    quota: k.quota ? JSON.parse(k.quota) : null,
    ip_allow: k.ip_allow ? JSON.parse(k.ip_allow) : null,
    rotated_to: k.rotated_to,
    created_at: iso(k.created_at),
    updated_at: iso(k.updated_at),
    revoked_at: iso(k.revoked_at),
    last_used_at: iso(k.last_used_at),
    canary: Number(k.canary) === 1,
  };
}

export function registerKeyRoutes(
  router: Router,
  deps: { keys: KeysService; clock: Clock; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { keys, clock, requireAdmin } = deps;
  const view = (k: KeyRow) => keyView(k, clock.now());
  const id = (ctx: RequestContext) => ctx.params.id as string;
  /** The policy fields create and patch share, with expiry resolved to epoch ms. */
  const policy = (body: {
    scopes?: string[] | undefined;
    expires_at?: string | null | undefined;
    expires_in?: number | undefined;
    rate_limit?: RateLimitPolicy | null | undefined;
    quota?: QuotaPolicy | null | undefined;
    ip_allow?: string[] | null | undefined;
  }) => ({
    scopes: body.scopes,
    expires_at: expiry(clock, body),
    rate_limit: body.rate_limit,
    quota: body.quota,
    ip_allow: body.ip_allow,
  });

  router.post(
    "/admin/v1/keys",
    {
      operationId: "createKey",
      summary: "Issue a key; its secret is shown this once",
      auth: ADMIN,
      tag: "keys",
      body: createSchema,
      responses: { 201: json(IssuedKeySchema, "The key and its secret"), ...errors(400, 401) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, createSchema);
      const { row, secret } = await keys.create(actor, {
        owner: body.owner,
        name: body.name,
        ...policy(body),
        scopes: body.scopes,
        canary: body.canary,
      });
      sendJson(ctx.res, 201, { key: view(row), secret });
    },
  );
  router.get(
    "/admin/v1/keys",
    {
      operationId: "listKeys",
      summary: "List keys, optionally of one owner",
      auth: ADMIN,
      tag: "keys",
      query: listQuery,
      responses: { 200: json(KeyPageSchema, "A page of keys"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const owner = ctx.query.get("owner") ?? undefined;
      if (owner !== undefined && !OWNER.test(owner))
        throw invalidRequest("query.owner: must be consumer:<name>, agent:<name> or user:<id>");
      const result = pageResult(await keys.list(owner, page.after, page.limit), page.limit, (k) => k.id);
      sendJson(ctx.res, 200, { items: result.items.map(view), next_cursor: result.next_cursor });
    },
  );
  router.get(
    "/admin/v1/keys/:id",
    {
      operationId: "getKey",
      summary: "Get a key",
      auth: ADMIN,
      tag: "keys",
      responses: { 200: json(KeySchema, "The key"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, view(await keys.get(id(ctx))));
    },
  );
  router.patch(
    "/admin/v1/keys/:id",
    {
      operationId: "updateKey",
      summary: "Change a key's scopes, limits, quota, ip_allow or expiry (effective on the next request)",
      auth: ADMIN,
      tag: "keys",
      body: patchSchema,
      responses: { 200: json(KeySchema, "The key"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, patchSchema);
      const patch: KeyPatch = { name: body.name, ...policy(body) };
      sendJson(ctx.res, 200, view(await keys.patch(actor, id(ctx), patch)));
    },
  );
  router.post(
    "/admin/v1/keys/:id/revoke",
    {
      operationId: "revokeKey",
      summary: "Revoke a key, on every replica",
      auth: ADMIN,
      tag: "keys",
      responses: { 200: json(KeySchema, "The revoked key"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, view(await keys.revoke(actor, id(ctx))));
    },
  );
  router.post(
    "/admin/v1/keys/:id/freeze",
    {
      operationId: "freezeKey",
      summary: "Freeze a key until unfrozen",
      auth: ADMIN,
      tag: "keys",
      responses: { 200: json(KeySchema, "The frozen key"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, view(await keys.freeze(actor, id(ctx))));
    },
  );
  router.post(
    "/admin/v1/keys/:id/unfreeze",
    {
      operationId: "unfreezeKey",
      summary: "Unfreeze a key",
      auth: ADMIN,
      tag: "keys",
      responses: { 200: json(KeySchema, "The key"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, view(await keys.unfreeze(actor, id(ctx))));
    },
  );
  router.post(
    "/admin/v1/keys/:id/rotate",
    {
      operationId: "rotateKey",
      summary: "Replace a key; the old one works for grace_s more seconds",
      auth: ADMIN,
      tag: "keys",
      body: rotateSchema,
      responses: {
        201: json(RotatedKeySchema, "The new key, its secret and the previous key"),
        ...errors(400, 401, 404),
      },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, rotateSchema);
      const r = await keys.rotate(actor, id(ctx), body.grace_s ?? 0);
      sendJson(ctx.res, 201, { key: view(r.row), secret: r.secret, previous: view(r.previous) });
    },
  );
}
