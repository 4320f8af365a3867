import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { readJson } from "../http/body.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, empty, errors, json } from "../openapi/operation.js";
import { ConsumerPageSchema, ConsumerSchema, type Consumer as ConsumerView } from "./consumers-schemas.js";
import type { Consumer, ConsumersService } from "./consumers-service.js";

// JSON.parse keeps a "__proto__" key as data, but spreading or zod would drop it silently: refuse it.
const metadata = z.record(z.string(), z.unknown()).and(
  z.custom((v) => typeof v !== "object" || v === null || !Object.hasOwn(v, "__proto__"), {
    message: '"__proto__" is not allowed as a key',
  }),
);
const createSchema = z.strictObject({ name: z.string().max(63), metadata: metadata.optional() });
const patchSchema = z.strictObject({ metadata });

export function consumerView(c: Consumer): ConsumerView {
  return { name: c.name, metadata: c.metadata, created_at: iso(c.created_at), updated_at: iso(c.updated_at) };
}

export function registerConsumerRoutes(
  router: Router,
  deps: { consumers: ConsumersService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { consumers, requireAdmin } = deps;
  router.post(
    "/admin/v1/consumers",
    {
      operationId: "createConsumer",
      summary: "Create a consumer (a caller of agents)",
      tag: "consumers",
      auth: ADMIN,
      body: createSchema,
      responses: { 201: json(ConsumerSchema, "The consumer"), ...errors(400, 401, 409) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, createSchema);
      sendJson(ctx.res, 201, consumerView(await consumers.create(actor, body)));
    },
  );
  router.get(
    "/admin/v1/consumers",
    {
      operationId: "listConsumers",
      summary: "List consumers",
      tag: "consumers",
      auth: ADMIN,
      query: pageSchema,
      responses: { 200: json(ConsumerPageSchema, "A page of consumers"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const result = pageResult(await consumers.list(page.after, page.limit), page.limit, (c) => c.name);
      sendJson(ctx.res, 200, { items: result.items.map(consumerView), next_cursor: result.next_cursor });
    },
  );
  router.get(
    "/admin/v1/consumers/:name",
    {
      operationId: "getConsumer",
      summary: "Get a consumer",
      tag: "consumers",
      auth: ADMIN,
      responses: { 200: json(ConsumerSchema, "The consumer"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, consumerView(await consumers.get(ctx.params.name as string)));
    },
  );
  router.patch(
    "/admin/v1/consumers/:name",
    {
      operationId: "updateConsumer",
      summary: "Replace a consumer's metadata",
      tag: "consumers",
      auth: ADMIN,
      body: patchSchema,
      responses: { 200: json(ConsumerSchema, "The consumer"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, patchSchema);
      sendJson(ctx.res, 200, consumerView(await consumers.update(actor, ctx.params.name as string, body.metadata)));
    },
  );
  router.delete(
    "/admin/v1/consumers/:name",
    {
      operationId: "deleteConsumer",
      summary: "Delete a consumer (its keys are revoked)",
      tag: "consumers",
      auth: ADMIN,
      responses: { 204: empty("Deleted"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await consumers.remove(actor, ctx.params.name as string);
      ctx.res.writeHead(204).end();
    },
  );
}
