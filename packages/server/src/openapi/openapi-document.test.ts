import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenApiDocument, operationsOf, rebase } from "../../test-support/openapi/openapi-kit.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";

/**
 * `GET /openapi.json` (SPEC §11) is a well-formed OpenAPI 3.1 document of the admin, agent and
 * token APIs, served publicly by a real server.
 */

let kw: TestServer;
let doc: OpenApiDocument;
let contentType: string | null;

beforeAll(async () => {
  kw = await startTestServer();
  const res = await fetch(`${kw.url}/openapi.json`);
  expect(res.status).toBe(200);
  contentType = res.headers.get("content-type");
  doc = (await res.json()) as OpenApiDocument;
});
afterAll(() => kw?.close());

/** Every path of SPEC §3, §5, §6 and §8 (users) that Keyward serves as an API (not a proxy). */
const SPEC_OPERATIONS = [
  "POST /admin/v1/agents",
  "GET /admin/v1/agents",
  "GET /admin/v1/agents/{name}",
  "PATCH /admin/v1/agents/{name}",
  "DELETE /admin/v1/agents/{name}",
  "POST /admin/v1/consumers",
  "POST /admin/v1/keys",
  "GET /admin/v1/keys",
  "GET /admin/v1/keys/{id}",
  "PATCH /admin/v1/keys/{id}",
  "POST /admin/v1/keys/{id}/revoke",
  "POST /admin/v1/keys/{id}/rotate",
  "POST /admin/v1/keys/{id}/freeze",
  "POST /admin/v1/keys/{id}/unfreeze",
  "PUT /admin/v1/credentials/{name}",
  "GET /admin/v1/credentials",
  "GET /admin/v1/credentials/{name}",
  "POST /admin/v1/credentials/{name}/rollback",
  "DELETE /admin/v1/credentials/{name}",
  "PUT /admin/v1/agents/{name}/grants",
  "PUT /admin/v1/users/{user}/credentials/{name}",
  "GET /admin/v1/audit",
  "GET /admin/v1/audit/verify",
  "POST /v1/auth/token",
  "POST /oauth/token",
  "POST /oauth/introspect",
  "POST /oauth/revoke",
  "GET /.well-known/jwks.json",
  "GET /.well-known/oauth-authorization-server",
  "GET /.well-known/openid-configuration",
  "GET /v1/credentials",
  "GET /v1/credentials/events",
  "POST /v1/tools/credentials",
  "POST /v1/audit/events",
];

describe("GET /openapi.json", () => {
  it("is public JSON holding no secret", async () => {
    expect(contentType).toMatch(/^application\/json\b/);
    const text = JSON.stringify(doc);
    expect(text).not.toContain(TEST_ADMIN_TOKEN);
    expect(text).not.toMatch(/kw[akr]_[A-Za-z0-9]{8}/);
  });

  it("is an OpenAPI 3.1 document", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("Keyward");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ["access_token", "admin_token", "api_key", "api_key_header"].sort(),
    );
  });

  it("lists the SPEC's admin, agent and token operations", () => {
    const listed = new Set(operationsOf(doc).map((o) => `${o.method.toUpperCase()} ${o.path}`));
    const missing = SPEC_OPERATIONS.filter((o) => !listed.has(o));
    expect(missing).toEqual([]);
  });

  it("gives every operation a unique id, a summary, a security requirement and responses", () => {
    const ids = new Set<string>();
    for (const op of operationsOf(doc)) {
      expect(ids.has(op.operation.operationId), op.operation.operationId).toBe(false);
      ids.add(op.operation.operationId);
      expect(op.operation.summary.length).toBeGreaterThan(0);
      expect(Array.isArray(op.operation.security)).toBe(true);
      for (const requirement of op.operation.security) {
        for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes).toHaveProperty(scheme);
      }
      const statuses = Object.keys(op.operation.responses);
      expect(statuses.length, op.operation.operationId).toBeGreaterThan(0);
      for (const s of statuses) expect(s).toMatch(/^[1-5]\d\d$/);
      // Every `{param}` of the path is declared, and nothing else is.
      const inPath = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const declared = (op.operation.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
      expect(declared).toEqual(inPath);
    }
  });

  it("resolves every $ref, and every schema compiles as JSON Schema 2020-12", () => {
    const refs: string[] = [];
    JSON.stringify(doc, (key, value) => {
      if (key === "$ref") refs.push(value as string);
      return value;
    });
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\/[A-Za-z0-9_]+$/);
      expect(doc.components.schemas, ref).toHaveProperty(ref.split("/").pop() as string);
    }
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: "doc", components: doc.components });
    for (const op of operationsOf(doc)) {
      for (const [status, response] of Object.entries(op.operation.responses)) {
        const schema = response.content?.["application/json"]?.schema;
        if (schema) expect(() => ajv.compile(rebase(schema)), `${op.operation.operationId} ${status}`).not.toThrow();
      }
    }
  });

  it("is served without credentials and is the same document on every request", async () => {
    const again = await fetch(`${kw.url}/openapi.json`, { headers: { authorization: "Bearer nonsense" } });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(doc);
  });
});
