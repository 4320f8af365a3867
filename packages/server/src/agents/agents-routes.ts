import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { readJson } from "../http/body.js";
import { iso, pageResult, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
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
export function agentView(a: Agent) {
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
  router.post("/admin/v1/agents", async (ctx) => {
    const actor = await requireAdmin(ctx);
    const body = await readJson(ctx.req, createSchema);
    sendJson(ctx.res, 201, agentView(await agents.create(actor, body)));
  });
  router.get("/admin/v1/agents", async (ctx) => {
    await requireAdmin(ctx);
    const page = parsePage(ctx.query);
    const result = pageResult(await agents.list(page.after, page.limit), page.limit, (a) => a.name);
    sendJson(ctx.res, 200, { items: result.items.map(agentView), next_cursor: result.next_cursor });
  });
  router.get("/admin/v1/agents/:name", async (ctx) => {
    await requireAdmin(ctx);
    sendJson(ctx.res, 200, agentView(await agents.get(ctx.params.name as string)));
  });
  router.patch("/admin/v1/agents/:name", async (ctx) => {
    const actor = await requireAdmin(ctx);
    const body = await readJson(ctx.req, patchSchema);
    sendJson(ctx.res, 200, agentView(await agents.update(actor, ctx.params.name as string, body)));
  });
  router.delete("/admin/v1/agents/:name", async (ctx) => {
    const actor = await requireAdmin(ctx);
    await agents.remove(actor, ctx.params.name as string);
    ctx.res.writeHead(204).end();
  });
}
