import type { z } from "zod";
import { ErrorBodySchema, OAuthErrorSchema } from "../error-bodies.js";
import { SchemaCollector } from "./json-schema.js";
import type { DocumentedRoute, OperationDoc, ResponseDoc, SecurityName } from "./operation.js";

type Json = Record<string, unknown>;

const SECURITY_SCHEMES: Record<SecurityName, Json> = {
  admin_token: {
    type: "http",
    scheme: "bearer",
    description: "An admin token (`kwa_…`): `keyward serve` prints the first one.",
  },
  api_key: {
    type: "http",
    scheme: "bearer",
    description: "An API key (`kwk_…`) of an agent, a consumer or a user, as `Authorization: Bearer`.",
  },
  api_key_header: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (`kwk_…`)." },
  access_token: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "An access token Keyward issued (`/v1/auth/token`, `/oauth/token`).",
  },
};

/** `/admin/v1/agents/:name` → `/admin/v1/agents/{name}`. */
export function openApiPath(pattern: string): string {
  return pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");
}

/** The OpenAPI 3.1 document of every route registered with a description. */
export function buildOpenApiDocument(routes: readonly DocumentedRoute[], info: { version: string }): Json {
  const schemas = new SchemaCollector();
  const errorRef = schemas.convert(ErrorBodySchema, "output");
  const oauthErrorRef = schemas.convert(OAuthErrorSchema, "output");
  const paths: Record<string, Record<string, Json>> = {};
  const ids = new Set<string>();
  for (const { method, pattern, doc } of routes) {
    if (ids.has(doc.operationId)) throw new Error(`operationId ${doc.operationId} is used twice`);
    ids.add(doc.operationId);
    const path = openApiPath(pattern);
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = operation(doc, pattern, schemas, {
      error: errorRef,
      oauth_error: oauthErrorRef,
    });
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Keyward",
      version: info.version,
      description:
        "The admin, agent and token APIs of Keyward, a credential gateway for AI agents. Errors use " +
        "`{error: {code, message, request_id}}`; the OAuth endpoints use RFC 6749's `{error, error_description}`.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    paths,
    components: { schemas: schemas.components, securitySchemes: SECURITY_SCHEMES },
  };
}

function operation(
  doc: OperationDoc,
  pattern: string,
  schemas: SchemaCollector,
  errorBodies: { error: Json; oauth_error: Json },
): Json {
  const parameters: Json[] = [];
  for (const name of pattern.match(/:[A-Za-z_][A-Za-z0-9_]*/g) ?? []) {
    const param = name.slice(1);
    parameters.push({
      name: param,
      in: "path",
      required: true,
      schema: { type: "string" },
      ...(doc.params?.[param] ? { description: doc.params[param] } : {}),
    });
  }
  if (doc.query) {
    const query = schemas.convert(doc.query, "input") as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      parameters.push({ name, in: "query", required: query.required?.includes(name) ?? false, schema });
    }
  }
  const responses: Record<string, Json> = {};
  for (const [status, response] of Object.entries(doc.responses)) {
    responses[status] = responseObject(response, schemas, errorBodies);
  }
  return {
    operationId: doc.operationId,
    summary: doc.summary,
    tags: [doc.tag],
    security: doc.auth === "public" ? [] : doc.auth.map((s) => ({ [s]: [] })),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(doc.body ? { requestBody: requestBody(doc.body, doc.bodyTypes, schemas) } : {}),
    responses,
  };
}

function requestBody(body: z.ZodType, types: readonly string[] | undefined, schemas: SchemaCollector): Json {
  const schema = schemas.convert(body, "input");
  // readJson reads an empty body as `{}`: a body is required only when `{}` would not do.
  return {
    required: !body.safeParse({}).success,
    content: Object.fromEntries((types ?? ["application/json"]).map((t) => [t, { schema }])),
  };
}

function responseObject(
  r: ResponseDoc,
  schemas: SchemaCollector,
  errorBodies: { error: Json; oauth_error: Json },
): Json {
  const schema = r.body ? errorBodies[r.body] : r.schema ? schemas.convert(r.schema, "output") : undefined;
  const contentType = r.contentType ?? (schema ? "application/json" : undefined);
  if (contentType === undefined) return { description: r.description };
  return { description: r.description, content: { [contentType]: schema ? { schema } : {} } };
}
