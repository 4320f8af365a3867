import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { AGENT_NAME } from "../agents/agents-service.js";
import { notFound } from "../errors.js";
import { readJson } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import { CREDENTIAL_NAME, CREDENTIAL_NAME_HINT } from "./credential-rules.js";
import { GrantsSchema, type Grants as GrantsView } from "./credentials-schemas.js";
import type { Grants, GrantsService } from "./grants-service.js";

const MAX_GRANTS = 1000;
const credentialName = z.string().regex(CREDENTIAL_NAME, CREDENTIAL_NAME_HINT);

const grantsSchema = z.strictObject({
  credentials: z.array(z.strictObject({ name: credentialName, mode: z.enum(["read", "inject"]) })).max(MAX_GRANTS),
  user_credentials: z.array(credentialName).max(MAX_GRANTS).optional(),
  may_call: z.array(z.string().regex(AGENT_NAME, "must be an agent name")).max(MAX_GRANTS).optional(),
});

function grantsView(g: Grants): GrantsView {
  return {
    agent: g.agent,
    credentials: g.credentials.map((c) => ({ name: c.name, mode: c.mode })),
    user_credentials: [...g.user_credentials],
    may_call: [...g.may_call],
  };
}

export function registerGrantRoutes(
  router: Router,
  deps: { grants: GrantsService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { grants, requireAdmin } = deps;
  const agentName = (ctx: RequestContext): string => {
    const name = ctx.params.name as string;
    if (!AGENT_NAME.test(name)) throw notFound(`agent ${name}`);
    return name;
  };

  router.put(
    "/admin/v1/agents/:name/grants",
    {
      operationId: "putGrants",
      summary: "Replace what an agent may read, inject and call",
      auth: ADMIN,
      tag: "agents",
      body: grantsSchema,
      responses: { 200: json(GrantsSchema, "The agent's grants"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, grantsSchema);
      sendJson(ctx.res, 200, grantsView(await grants.replace(actor, agentName(ctx), body)));
    },
  );

  router.get(
    "/admin/v1/agents/:name/grants",
    {
      operationId: "getGrants",
      summary: "Get an agent's grants",
      auth: ADMIN,
      tag: "agents",
      responses: { 200: json(GrantsSchema, "The agent's grants"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, grantsView(await grants.get(agentName(ctx))));
    },
  );
}
