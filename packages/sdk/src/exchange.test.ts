import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KeywardError } from "./errors.js";
import { ExchangeError, exchangeToken } from "./exchange.js";

const SUBJECT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjb25zdW1lcjpiaWxsaW5nIn0.c2lnbmF0dXJlLXN1YmplY3Q";
const ACTOR = "kwk_AbCdEfGhIjKlMnOpQrStUvWxYz012345abcdef";
const DELEGATED = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZWxlZ2F0ZWQifQ.c2lnbmF0dXJlLWRlbGVnYXRlZA";

interface Seen {
  method: string | undefined;
  path: string | undefined;
  contentType: string | undefined;
  form: Record<string, string>;
}

/** Stands in for Keyward's token endpoint; answers by `audience` so each case picks its reply. */
let server: Server;
let url: string;
let seen: Seen | undefined;
beforeAll(async () => {
  server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const form = Object.fromEntries(new URLSearchParams(raw));
    seen = { method: req.method, path: req.url, contentType: req.headers["content-type"], form };
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    const oauthError = (error: string, description: string) => json(400, { error, error_description: description });
    switch (form.audience) {
      case "research":
        return json(200, {
          access_token: DELEGATED,
          issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
          token_type: "N_A",
          expires_in: 240,
          scope: form.scope ?? "agent:research",
        });
      case "no-scope":
        return json(200, { access_token: DELEGATED, token_type: "Bearer", expires_in: 60 });
      case "not-allowed":
        return oauthError("invalid_target", "agent:workflow may not call not-allowed");
      case "escalate":
        return oauthError("invalid_scope", "scope exceeds the subject token's");
      case "echo":
        return oauthError(
          "invalid_grant",
          `subject_token ${form.subject_token} and actor ${form.actor_token} rejected`,
        );
      case "html":
        return res.writeHead(502, { "content-type": "text/html" }).end("<h1>Bad Gateway</h1>");
      case "empty":
        return json(200, { token_type: "Bearer" });
      case "redirect":
        return res.writeHead(307, { location: "http://attacker.example/oauth/token" }).end();
      default:
        return json(500, {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);
beforeEach(() => {
  seen = undefined;
});

async function failure(p: Promise<unknown>): Promise<ExchangeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExchangeError);
  const e = err as ExchangeError;
  const text = `${e.message} ${e.errorDescription ?? ""} ${String(e.stack)}`;
  expect(text).not.toContain(SUBJECT);
  expect(text).not.toContain(ACTOR);
  return e;
}

describe("exchangeToken", () => {
  it("posts an RFC 8693 token-exchange form to /oauth/token and returns the delegated token", async () => {
    const result = await exchangeToken({
      url,
      actorToken: ACTOR,
      subjectToken: SUBJECT,
      audience: "research",
      scope: ["agent:research", "read:docs"],
    });
    expect(result).toEqual({
      accessToken: DELEGATED,
      expiresIn: 240,
      scope: "agent:research read:docs",
      issuedTokenType: "urn:ietf:params:oauth:token-type:access_token",
    });
    expect(seen).toEqual({
      method: "POST",
      path: "/oauth/token",
      contentType: "application/x-www-form-urlencoded",
      form: {
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: SUBJECT,
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        actor_token: ACTOR,
        actor_token_type: "urn:ietf:params:oauth:token-type:access_token",
        audience: "research",
        scope: "agent:research read:docs",
      },
    });
  });

  it("leaves scope out unless asked, tolerates a trailing slash, and reads an answer without scope", async () => {
    const result = await exchangeToken({
      url: `${url}/`,
      actorToken: ACTOR,
      subjectToken: SUBJECT,
      audience: "no-scope",
    });
    expect(seen?.path).toBe("/oauth/token");
    expect(seen?.form).not.toHaveProperty("scope");
    expect(result).toEqual({
      accessToken: DELEGATED,
      expiresIn: 60,
      scope: "",
      issuedTokenType: "urn:ietf:params:oauth:token-type:access_token",
    });
    const asked = await exchangeToken({
      url,
      actorToken: ACTOR,
      subjectToken: SUBJECT,
      audience: "no-scope",
      scope: "a b",
    });
    expect(asked.scope).toBe("a b");
  });

  it("uses the fetch it is given", async () => {
    const calls: string[] = [];
    const result = await exchangeToken({
      url,
      actorToken: ACTOR,
      subjectToken: SUBJECT,
      audience: "research",
      fetch: (input, init) => {
        calls.push(String(input));
        return fetch(input, init);
      },
    });
    expect(calls).toEqual([`${url}/oauth/token`]);
    expect(result.accessToken).toBe(DELEGATED);
  });

  it("turns OAuth error bodies into ExchangeError with the error code", async () => {
    const target = await failure(
      exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "not-allowed" }),
    );
    expect(target).toBeInstanceOf(KeywardError);
    expect(target.error).toBe("invalid_target");
    expect(target.code).toBe("invalid_target");
    expect(target.status).toBe(400);
    expect(target.errorDescription).toBe("agent:workflow may not call not-allowed");
    const scope = await failure(exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "escalate" }));
    expect(scope.error).toBe("invalid_scope");
  });

  it("never repeats a token the server echoed back", async () => {
    const e = await failure(exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "echo" }));
    expect(e.error).toBe("invalid_grant");
    expect(e.errorDescription).toContain("[redacted]");
  });

  it("reports answers that are not OAuth responses as invalid_response", async () => {
    const html = await failure(exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "html" }));
    expect([html.error, html.status]).toEqual(["invalid_response", 502]);
    const empty = await failure(exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "empty" }));
    expect([empty.error, empty.status]).toEqual(["invalid_response", 200]);
    const redirect = await failure(
      exchangeToken({ url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "redirect" }),
    );
    expect([redirect.error, redirect.status]).toEqual(["invalid_response", 307]);
  });

  it("refuses bad options before sending anything, without naming the tokens", async () => {
    const bad: Array<Record<string, unknown>> = [
      { url: "not a url" },
      { url: "ftp://keyward.internal" },
      { actorToken: "" },
      { subjectToken: undefined },
      { audience: "" },
    ];
    for (const override of bad) {
      const options = { url, actorToken: ACTOR, subjectToken: SUBJECT, audience: "research", ...override };
      const err = await exchangeToken(options as Parameters<typeof exchangeToken>[0]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect(String((err as Error).message)).not.toContain(SUBJECT);
      expect(String((err as Error).message)).not.toContain(ACTOR);
    }
    expect(seen).toBeUndefined();
  });
});
