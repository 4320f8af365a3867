import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { KEYWARD } from "../auth/audience.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import { CREDENTIAL_NAME_HINT, isCredentialName } from "../credentials/credential-rules.js";
import { invalidRequest, KeywardError, notFound } from "../errors.js";
import { parseWith, readJson } from "../http/body.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, CALLER, empty, errors, json } from "../openapi/operation.js";
import { parseUserParam, USER_PREFIX, userOfPrincipal } from "./user-rules.js";
import {
  type UserCredential,
  UserCredentialPageSchema,
  UserCredentialWrittenSchema,
  type UserListed,
  UserPageSchema,
  type UserCredentialWritten as WrittenView,
} from "./users-schemas.js";
import type { UserCredentialWritten, UsersService } from "./users-service.js";
import type { UserCredentialMeta, UserWithCredentials } from "./users-store.js";

const putSchema = z.strictObject({ value: z.string() });
const usersQuery = z.object({
  credential: z.string().refine(isCredentialName, CREDENTIAL_NAME_HINT).optional(),
});

const written = (w: UserCredentialWritten): WrittenView => ({
  user: w.user,
  name: w.name,
  version: w.version,
  updated_at: iso(w.updated_at),
});
const listed = (m: UserCredentialMeta): UserCredential => ({
  name: m.name,
  version: m.version,
  updated_at: iso(m.updated_at),
});
const userListed = (u: UserWithCredentials): UserListed => ({ user: u.user, credentials: u.credentials.map(listed) });

/**
 * Per-user credentials (SPEC §3, §8): the admin API under /admin/v1/users/{user}/credentials, and
 * the same for users themselves under /v1/users/me/credentials. Both write and delete; neither
 * ever reads a value back (lists carry names and versions only).
 */
export function registerUserRoutes(
  router: Router,
  deps: {
    users: UsersService;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
    auth: CallerAuth;
  },
): void {
  const { users, requireAdmin } = deps;

  const nameToWrite = (ctx: RequestContext): string => {
    const name = ctx.params.name as string;
    if (!isCredentialName(name)) throw invalidRequest(`name: ${CREDENTIAL_NAME_HINT}`);
    return name;
  };
  /** A name that cannot exist is simply not found (PUT, which would create it, says why instead). */
  const existingName = (ctx: RequestContext, user: string): string => {
    const name = ctx.params.name as string;
    if (!isCredentialName(name)) throw notFound(`credential ${name} of user ${user}`);
    return name;
  };

  async function put(ctx: RequestContext, actor: Actor, user: string): Promise<void> {
    const body = await readJson(ctx.req, putSchema);
    const w = await users.put(actor, user, nameToWrite(ctx), body.value);
    sendJson(ctx.res, w.created ? 201 : 200, written(w));
  }
  async function remove(ctx: RequestContext, actor: Actor, user: string): Promise<void> {
    await users.remove(actor, user, existingName(ctx, user));
    ctx.res.writeHead(204).end();
  }
  async function list(ctx: RequestContext, user: string): Promise<void> {
    const page = parsePage(ctx.query);
    const result = pageResult(await users.list(user, page.after, page.limit), page.limit, (m) => m.name);
    sendJson(ctx.res, 200, { items: result.items.map(listed), next_cursor: result.next_cursor });
  }

  router.put(
    "/admin/v1/users/:user/credentials/:name",
    {
      operationId: "putUserCredential",
      summary: "Set a user's tool credential (write-only)",
      auth: ADMIN,
      tag: "users",
      body: putSchema,
      responses: {
        200: json(UserCredentialWrittenSchema, "A new version"),
        201: json(UserCredentialWrittenSchema, "A new credential"),
        ...errors(400, 401),
      },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await put(ctx, actor, parseUserParam(ctx.params.user as string));
    },
  );
  router.delete(
    "/admin/v1/users/:user/credentials/:name",
    {
      operationId: "deleteUserCredential",
      summary: "Delete a user's tool credential",
      auth: ADMIN,
      tag: "users",
      responses: { 204: empty("Deleted"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await remove(ctx, actor, parseUserParam(ctx.params.user as string));
    },
  );
  /** Who has per-user credentials: ids and credential metadata, never a value. */
  router.get(
    "/admin/v1/users",
    {
      operationId: "listUsers",
      summary: "List users with tool credentials (names and versions only)",
      auth: ADMIN,
      tag: "users",
      query: pageSchema.extend(usersQuery.shape),
      responses: { 200: json(UserPageSchema, "A page of users"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const { credential } = parseWith(usersQuery, { credential: ctx.query.get("credential") ?? undefined }, "query");
      const rows = await users.listUsers({ after: page.after, limit: page.limit, credential });
      const result = pageResult(rows, page.limit, (u) => u.user);
      sendJson(ctx.res, 200, { items: result.items.map(userListed), next_cursor: result.next_cursor });
    },
  );
  router.get(
    "/admin/v1/users/:user/credentials",
    {
      operationId: "listUserCredentials",
      summary: "List a user's tool credentials (names and versions only)",
      auth: ADMIN,
      tag: "users",
      query: pageSchema,
      responses: { 200: json(UserCredentialPageSchema, "A page of credentials"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      await list(ctx, parseUserParam(ctx.params.user as string));
    },
  );

  /**
   * The user behind a self-service request: the user's own key, or an access token for Keyward
   * itself whose `sub` is the user. A token handed to an agent (the JWT the gateway forwards) is
   * refused by the caller check: it must not let the agent rewrite the user's credentials.
   */
  async function self(ctx: RequestContext): Promise<{ actor: Actor; user: string }> {
    const caller = await deps.auth.require(ctx, KEYWARD);
    const user = userOfPrincipal(caller.principal);
    if (user === undefined) {
      throw new KeywardError("forbidden", "only a user's own key or access token can manage that user's credentials");
    }
    return {
      user,
      actor: {
        principal: `${USER_PREFIX}${user}`,
        ip: ctx.peerIp,
        requestId: ctx.requestId,
        propagationPending: () => {
          if (!ctx.res.headersSent) ctx.res.setHeader("keyward-propagation", "pending");
        },
      },
    };
  }

  router.put(
    "/v1/users/me/credentials/:name",
    {
      operationId: "putMyCredential",
      summary: "Set one of the calling user's own tool credentials",
      auth: CALLER,
      tag: "users",
      body: putSchema,
      responses: {
        200: json(UserCredentialWrittenSchema, "A new version"),
        201: json(UserCredentialWrittenSchema, "A new credential"),
        ...errors(400, 401, 403),
      },
    },
    async (ctx) => {
      const { actor, user } = await self(ctx);
      await put(ctx, actor, user);
    },
  );
  router.delete(
    "/v1/users/me/credentials/:name",
    {
      operationId: "deleteMyCredential",
      summary: "Delete one of the calling user's own tool credentials",
      auth: CALLER,
      tag: "users",
      responses: { 204: empty("Deleted"), ...errors(401, 403, 404) },
    },
    async (ctx) => {
      const { actor, user } = await self(ctx);
      await remove(ctx, actor, user);
    },
  );
  router.get(
    "/v1/users/me/credentials",
    {
      operationId: "listMyCredentials",
      summary: "List the calling user's own tool credentials",
      auth: CALLER,
      tag: "users",
      query: pageSchema,
      responses: { 200: json(UserCredentialPageSchema, "A page of credentials"), ...errors(401, 403) },
    },
    async (ctx) => {
      const { user } = await self(ctx);
      await list(ctx, user);
    },
  );
}
