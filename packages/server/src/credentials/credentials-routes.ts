import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { invalidRequest, notFound } from "../errors.js";
import { parseWith, readJson } from "../http/body.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, empty, errors, json } from "../openapi/operation.js";
import { CREDENTIAL_NAME_HINT, isCredentialName } from "./credential-rules.js";
import {
  type Credential,
  type CredentialDetail,
  CredentialDetailSchema,
  CredentialPageSchema,
} from "./credentials-schemas.js";
import {
  type CredentialInput,
  type CredentialMeta,
  type CredentialsService,
  PROVIDER_TYPE,
} from "./credentials-service.js";
import type { VersionMeta } from "./credentials-store.js";
import type { TokenProviders } from "./token-providers.js";

const egress = z
  .strictObject({
    base_url: z.string().max(2048),
    header: z.string().max(64).optional(),
    format: z.string().max(512).optional(),
  })
  .nullable()
  .optional();

const staticSchema = z.strictObject({ type: z.literal("static").optional(), value: z.string(), egress });
const providerSchema = z.strictObject({
  type: z.literal(PROVIDER_TYPE),
  token_url: z.string().max(2048),
  client_id: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[\x20-\x7e]+$/, "must be printable ASCII"),
  client_secret: z.string(),
  scope: z
    .string()
    .min(1)
    .max(2048)
    .regex(/^[\x20-\x7e]+$/, "must be printable ASCII")
    .optional(),
  egress,
});
const bodyShape = z.object({ type: z.unknown().optional() }).passthrough();
const rollbackSchema = z.strictObject({ version: z.number().int().min(1).max(2_000_000_000) });

/** The admin view of a credential: metadata only. No value and no client secret, ever. */
export function credentialView(m: CredentialMeta): Credential {
  const r = m.row;
  return {
    name: r.name,
    type: r.type,
    version: r.current_version,
    egress: m.egress,
    provider: m.provider
      ? { token_url: m.provider.token_url, client_id: m.provider.client_id, scope: m.provider.scope }
      : null,
    status: r.status,
    status_message: r.status_message,
    status_at: iso(r.status_at),
    expires_at: iso(m.expiresAt),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

function versionView(v: VersionMeta): CredentialDetail["versions"][number] {
  return {
    version: v.version,
    source: v.source,
    rolled_back_from: v.rolled_back_from,
    expires_at: iso(v.expires_at),
    created_at: iso(v.created_at),
    created_by: v.created_by,
  };
}

export function registerCredentialRoutes(
  router: Router,
  deps: {
    credentials: CredentialsService;
    providers: TokenProviders;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
  },
): void {
  const { credentials, providers, requireAdmin } = deps;
  /** A name that cannot exist is simply not found (PUT, which would create it, says why instead). */
  const existingName = (ctx: RequestContext): string => {
    const name = ctx.params.name as string;
    if (!isCredentialName(name)) throw notFound(`credential ${name}`);
    return name;
  };
  const detailed = async (name: string): Promise<CredentialDetail> => {
    const { credential, versions } = await credentials.get(name);
    return { ...credentialView(credential), versions: versions.map(versionView) };
  };

  router.put(
    "/admin/v1/credentials/:name",
    {
      operationId: "putCredential",
      summary: "Create or replace a credential (a new version); the value is write-only",
      auth: ADMIN,
      tag: "credentials",
      body: z.union([staticSchema, providerSchema]),
      responses: {
        200: json(CredentialDetailSchema, "A new version of an existing credential"),
        201: json(CredentialDetailSchema, "A new credential"),
        ...errors(400, 401),
      },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const name = ctx.params.name as string;
      const raw = await readJson(ctx.req, bodyShape);
      if (!isCredentialName(name)) throw invalidRequest(`name: ${CREDENTIAL_NAME_HINT}`);
      let input: CredentialInput;
      let egressInput: z.infer<typeof egress>;
      if (raw.type === PROVIDER_TYPE) {
        const b = parseWith(providerSchema, raw, "body");
        input = {
          type: PROVIDER_TYPE,
          token_url: b.token_url,
          client_id: b.client_id,
          client_secret: b.client_secret,
          ...(b.scope !== undefined ? { scope: b.scope } : {}),
        };
        egressInput = b.egress;
      } else {
        const b = parseWith(staticSchema, raw, "body");
        input = { type: "static", value: b.value };
        egressInput = b.egress;
      }
      const { created, credential } = await credentials.set(actor, name, input, egressInput);
      // A token provider gets its first token before we answer, so the response shows whether the
      // endpoint accepted the client (status ok) or why not (status error, status_message).
      if (input.type === PROVIDER_TYPE) {
        await providers.refreshNow(name);
        sendJson(ctx.res, created ? 201 : 200, await detailed(name));
        return;
      }
      // The version this write made, not whatever is current by the time we re-read: a concurrent
      // writer may already have committed the next one.
      sendJson(ctx.res, created ? 201 : 200, { ...(await detailed(name)), ...credentialView(credential) });
    },
  );

  router.get(
    "/admin/v1/credentials",
    {
      operationId: "listCredentials",
      summary: "List credentials (metadata only)",
      auth: ADMIN,
      tag: "credentials",
      query: pageSchema,
      responses: { 200: json(CredentialPageSchema, "A page of credentials"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const result = pageResult(await credentials.list(page.after, page.limit), page.limit, (m) => m.row.name);
      sendJson(ctx.res, 200, { items: result.items.map(credentialView), next_cursor: result.next_cursor });
    },
  );

  router.get(
    "/admin/v1/credentials/:name",
    {
      operationId: "getCredential",
      summary: "Get a credential's metadata and versions",
      auth: ADMIN,
      tag: "credentials",
      responses: { 200: json(CredentialDetailSchema, "The credential"), ...errors(401, 404) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      sendJson(ctx.res, 200, await detailed(existingName(ctx)));
    },
  );

  router.post(
    "/admin/v1/credentials/:name/rollback",
    {
      operationId: "rollbackCredential",
      summary: "Make a new version equal to an old one",
      auth: ADMIN,
      tag: "credentials",
      body: rollbackSchema,
      responses: { 200: json(CredentialDetailSchema, "The credential"), ...errors(400, 401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, rollbackSchema);
      const name = existingName(ctx);
      const written = await credentials.rollback(actor, name, body.version);
      sendJson(ctx.res, 200, { ...(await detailed(name)), ...credentialView(written) });
    },
  );

  router.delete(
    "/admin/v1/credentials/:name",
    {
      operationId: "deleteCredential",
      summary: "Delete a credential",
      auth: ADMIN,
      tag: "credentials",
      responses: { 204: empty("Deleted"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      await credentials.remove(actor, existingName(ctx));
      ctx.res.writeHead(204).end();
    },
  );
}
