import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { readJson } from "../http/body.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, empty, errors, json } from "../openapi/operation.js";
import { AgentPageSchema, AgentSchema, type Agent as AgentView } from "./agents-schemas.js";
import type { Agent, AgentsService } from "./agents-service.js";

const createSchema = z.strictObject({
  name: z.string().max(63),
  upstream: z.string().max(2048),
  description: z.string().max(1024).optional(),
});

const patchSchema = z.strictObject({
  upstream: z.string().max(2048).optional(),
  description: z.string().max(1024).nullable().optional(),
});

/** The public shape of an agent, built from an explicit list of fields. */
export function agentView(a: Agent): AgentView {
  return {
    name: a.name,
    upstream: a.upstream,
    description: a.description,
    created_at: iso(a.created_at),
    updated_at: iso(a.updated_at),
  };
}

export function registerAgentRoutes(
  router: Router,
  deps: { agents: AgentsService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { agents, requireAdmin } = deps;
  const params = { name: "the agent's name" };
  router.post(
    "/admin/v1/agents",
    {
      operationId: "createAgent",
      summary: "Create an agent (a protected upstream)",
      tag: "agents",
      auth: ADMIN,
      body: createSchema,
      responses: { 201: json(AgentSchema, "The agent"), ...errors(400, 401, 409) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, createSchema);
      sendJson(ctx.res, 201, agentView(await agents.create(actor, body)));
    },
  );
  router.get(
    "/admin/v1/agents",
    {
      operationId: "listAgents",
      summary: "List agents",
      tag: "agents",
      auth: ADMIN,
      query: pageSchema,
      responses: { 200: json(AgentPageSchema, "A page of agents"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const result = pageResult(await agents.list(page.after, page.limit), page.limit, (a) => a.name);
      sendJson(ctx.res, 200, { items: result.items.map(agentView), next_cursor: result.next_cursor });
    },
  );
  router.get(
    "/admin/v1/agents/:name",
    {
      operationId: "getAgent",
      summary: "Get an agent",
      tag: "agents",
      auth: ADMIN,
      params,
      responses: { 200: json(AgentSchema, "The agent"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, agentView(await agents.get(ctx.params.name as string)));
    },
  );
  router.patch(
    "/admin/v1/agents/:name",
    {
      operationId: "updateAgent",
      summary: "Change an agent's upstream or description",
      tag: "agents",
      auth: ADMIN,
      params,
      body: patchSchema,
      responses: { 200: json(AgentSchema, "The agent"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, patchSchema);
      sendJson(ctx.res, 200, agentView(await agents.update(actor, ctx.params.name as string, body)));
    },
  );
  router.delete(
    "/admin/v1/agents/:name",
    {
      operationId: "deleteAgent",
      summary: "Delete an agent (its keys are revoked, its grants removed)",
      tag: "agents",
      auth: ADMIN,
      params,
      responses: { 204: empty("Deleted"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await agents.remove(actor, ctx.params.name as string);
      ctx.res.writeHead(204).end();
    },
  );
}
