import type { Actor } from "../admin/admin-context.js";
import { parseWith } from "../http/body.js";
import { iso } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import {
  KeyAddressesSchema,
  KeyUsageSchema,
  SeriesQuerySchema,
  TopQuerySchema,
  UsageTopSchema,
} from "./usage-schemas.js";
import type { UsageService } from "./usage-service.js";
import type { Step } from "./usage-store.js";

const STEP: Readonly<Record<"1m" | "1h" | "1d", Step>> = { "1m": "m", "1h": "h", "1d": "d" };

export interface UsageRouteDeps {
  usage: UsageService;
  /** Throws not_found for an unknown key id (keys-service `get`). */
  getKey: (id: string) => Promise<unknown>;
  requireAdmin: (ctx: RequestContext) => Promise<Actor>;
}

const query = (ctx: RequestContext) => Object.fromEntries(ctx.query);
const ms = (t: string | undefined) => (t === undefined ? undefined : Date.parse(t));

/** `GET /admin/v1/keys/{id}/usage`, `GET /admin/v1/keys/{id}/addresses`, `GET /admin/v1/usage` (SPEC §10). */
export function registerUsageRoutes(router: Router, deps: UsageRouteDeps): void {
  const { usage, getKey, requireAdmin } = deps;
  router.get(
    "/admin/v1/keys/:id/usage",
    {
      operationId: "getKeyUsage",
      summary: "A key's requests per bucket: allowed, and denied by code (at most 1440 buckets)",
      auth: ADMIN,
      tag: "usage",
      query: SeriesQuerySchema,
      responses: { 200: json(KeyUsageSchema, "Every bucket of the range, oldest first"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const q = parseWith(SeriesQuerySchema, query(ctx), "query");
      const id = ctx.params.id as string;
      await getKey(id);
      const items = await usage.series(id, { step: STEP[q.step], from: ms(q.from), to: ms(q.to) });
      sendJson(ctx.res, 200, {
        items: items.map((b) => ({ t: new Date(b.t).toISOString(), allowed: b.allowed, denied: b.denied })),
      });
    },
  );
  router.get(
    "/admin/v1/keys/:id/addresses",
    {
      operationId: "getKeyAddresses",
      summary: "The last source addresses a key was used from (newest first, bounded per key)",
      auth: ADMIN,
      tag: "usage",
      responses: { 200: json(KeyAddressesSchema, "The key's recent addresses"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const id = ctx.params.id as string;
      await getKey(id);
      const rows = await usage.addresses(id);
      sendJson(ctx.res, 200, {
        items: rows.map((r) => ({ ip: r.ip, first_seen: iso(r.first_seen), last_seen: iso(r.last_seen), count: r.n })),
      });
    },
  );
  router.get(
    "/admin/v1/usage",
    {
      operationId: "getUsageTop",
      summary: "The busiest keys, agents or consumers over a range",
      auth: ADMIN,
      tag: "usage",
      query: TopQuerySchema,
      responses: { 200: json(UsageTopSchema, "Groups by requests, busiest first"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const q = parseWith(TopQuerySchema, query(ctx), "query");
      const result = await usage.top({ by: q.group_by, top: q.top, from: ms(q.from), to: ms(q.to) });
      sendJson(ctx.res, 200, { group_by: q.group_by, from: iso(result.from), to: iso(result.to), items: result.items });
    },
  );
}
