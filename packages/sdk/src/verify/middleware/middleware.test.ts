import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify, { type FastifyRequest } from "fastify";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, startIssuer, type TestIssuer } from "../../../test-support/verify/issuer.js";
import type { VerifiedToken } from "../claims.js";
import { type Verifier, verifier } from "../verifier.js";
import { expressMiddleware } from "./express.js";
import { fastifyHook } from "./fastify.js";
import { honoMiddleware, type KeywardHonoEnv } from "./hono.js";
import { nodeMiddleware } from "./node.js";

// The augmentations the middleware docs tell users to write, checked here by the type checker.
declare module "fastify" {
  interface FastifyRequest {
    keyward?: VerifiedToken | null;
  }
}
declare global {
  namespace Express {
    interface Request {
      keyward?: VerifiedToken;
    }
  }
}

/**
 * The same contract checked on a real server of each framework: `/me` needs a valid token,
 * `/admin` also the `admin` scope, `/down` uses a verifier whose issuer is unreachable.
 */
interface Verifiers {
  v: Verifier;
  down: Verifier;
}
type Started = { url: string; close: () => Promise<void> };

const view = (t: VerifiedToken | undefined) => ({ sub: t?.subject, scopes: t?.scopes, actor: t?.actor });

async function listen(server: Server): Promise<Started> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const frameworks: Record<string, (vs: Verifiers) => Promise<Started>> = {
  "node:http": ({ v, down }) => {
    const auth = nodeMiddleware(v);
    const admin = nodeMiddleware(v, { requiredScopes: ["admin"] });
    const outage = nodeMiddleware(down);
    return listen(
      createServer(async (req, res) => {
        const guard = req.url === "/admin" ? admin : req.url === "/down" ? outage : auth;
        const token = await guard(req, res);
        if (!token) return;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ ...view(token), onRequest: (req as { keyward?: VerifiedToken }).keyward === token }));
      }),
    );
  },

  express: ({ v, down }) => {
    const app = express();
    const send = (req: express.Request, res: express.Response) => {
      res.json({ ...view(req.keyward), onRequest: req.keyward !== undefined });
    };
    app.get("/me", expressMiddleware(v), send);
    app.get("/admin", expressMiddleware(v, { requiredScopes: ["admin"] }), send);
    app.get("/down", expressMiddleware(down), send);
    return listen(createServer(app));
  },

  fastify: async ({ v, down }) => {
    const app = Fastify();
    app.decorateRequest("keyward", null);
    const send = async (request: FastifyRequest) => ({
      ...view(request.keyward ?? undefined),
      onRequest: Boolean(request.keyward),
    });
    app.get("/me", { onRequest: fastifyHook(v) }, send);
    app.get("/admin", { preHandler: fastifyHook(v, { requiredScopes: ["admin"] }) }, send);
    app.get("/down", { onRequest: fastifyHook(down) }, send);
    await app.listen({ port: 0, host: "127.0.0.1" });
    return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
  },

  hono: async ({ v, down }) => {
    const app = new Hono<KeywardHonoEnv>();
    app.use("/me", honoMiddleware(v));
    app.use("/admin", honoMiddleware(v, { requiredScopes: ["admin"] }));
    app.use("/down", honoMiddleware(down));
    const send = (c: { get(k: "keyward"): VerifiedToken; json(b: unknown): Response }) =>
      c.json({ ...view(c.get("keyward")), onRequest: c.get("keyward") !== undefined });
    app.get("/me", send);
    app.get("/admin", send);
    app.get("/down", send);
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s as Server));
    });
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  },
};

let issuer: TestIssuer;
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(() => issuer.close());

describe.each(Object.entries(frameworks))("%s middleware", (_name, start) => {
  let app: Started;
  beforeAll(async () => {
    app = await start({
      v: verifier({ issuer: issuer.url, audience: AUDIENCE }),
      down: verifier({ issuer: "http://127.0.0.1:9", audience: AUDIENCE }),
    });
  });
  afterAll(() => app.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${app.url}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text) };
  };

  it("puts the verified token on the request", async () => {
    const token = await issuer.token({ scope: "agent:research read:docs", act: { sub: "agent:workflow" } });
    const res = await get("/me", { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sub: "consumer:billing",
      scopes: ["agent:research", "read:docs"],
      actor: ["agent:workflow"],
      onRequest: true,
    });
  });

  it("answers 401 missing_credentials with a bare Bearer challenge when no token is sent", async () => {
    const res = await get("/me");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect(res.body.error.code).toBe("missing_credentials");
    expect(res.body.error.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get("x-request-id")).toBe(res.body.error.request_id);
  });

  it("answers 401 invalid_token with the SPEC body, the caller's request id, and no trace of the token", async () => {
    const forged = `${(await issuer.token()).slice(0, -4)}AAAA`;
    const res = await get("/me", { authorization: `Bearer ${forged}`, "x-request-id": "req-123" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      error: { code: "invalid_token", message: expect.any(String), request_id: "req-123" },
    });
    for (const part of forged.split(".")) expect(res.text).not.toContain(part);
  });

  it("answers 401 token_expired for an expired token", async () => {
    const expired = await issuer.token({ iat: 1000, exp: 2000 });
    const res = await get("/me", { authorization: `Bearer ${expired}` });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("token_expired");
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
  });

  it("answers 403 scope_denied when a required scope is missing, and lets the scope through", async () => {
    const denied = await get("/admin", { authorization: `Bearer ${await issuer.token({ scope: "read:docs" })}` });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("scope_denied");
    expect(denied.body.error.message).toContain("admin");
    expect(denied.headers.get("www-authenticate")).toBe('Bearer error="insufficient_scope", scope="admin"');
    const allowed = await get("/admin", {
      authorization: `Bearer ${await issuer.token({ scope: "read:docs admin" })}`,
    });
    expect(allowed.status).toBe(200);
    expect(allowed.body.scopes).toEqual(["read:docs", "admin"]);
  });

  it("answers 503 jwks_unavailable, not 401, while the issuer's keys cannot be loaded", async () => {
    const res = await get("/down", { authorization: `Bearer ${await issuer.token()}` });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("jwks_unavailable");
    expect(res.headers.get("www-authenticate")).toBeNull();
  });

  it("does not adopt a request id that looks like a credential", async () => {
    const res = await get("/me", { "x-request-id": "kwk_0123456789abcdefghijklmnopqrstuv" });
    expect(res.status).toBe(401);
    expect(res.body.error.request_id).not.toContain("kwk_");
    expect(res.headers.get("x-request-id")).toBe(res.body.error.request_id);
  });
});
