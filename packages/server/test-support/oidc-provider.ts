import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type OidcIssuer, startOidcIssuer } from "./oidc-issuer.js";

/** One sign-in the provider was asked for, as /authorize received it. */
interface PendingSignIn {
  clientId: string;
  redirectUri: string;
  state: string;
  nonce: string;
  challenge: string;
}

interface IssuedCode extends PendingSignIn {
  username: string;
}

export interface OidcProvider extends OidcIssuer {
  clientId: string;
  /** The last /authorize query, as received. */
  lastAuthorize: URLSearchParams | undefined;
  /** Codes issued at sign-in and redeemed at /token. */
  issued: number;
  redeemed: number;
  /** Claims added to every ID token (or per user name). */
  claimsFor: (username: string) => Record<string, unknown>;
  /** The nonce to put in ID tokens instead of the request's (an attack case). */
  forceNonce: string | undefined;
  /** The `aud` to put in ID tokens instead of the client id (an attack case). */
  forceAudience: string | undefined;
  /** The Authorization header of the last /token request (a confidential relying party's Basic). */
  lastTokenAuthorization: string | undefined;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
  });

const LOGIN_PAGE = (request: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Sign in to the test identity provider</h1>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="${request}">
<label>User name <input name="username" id="username"></label>
<button type="submit">Sign in</button>
</form></body></html>`;

/**
 * A local OIDC provider for tests, built on the test issuer (oidc-issuer.ts, whose keys sign the
 * ID tokens): `/authorize` shows a login form (a user name and "Sign in", no password), and its
 * POST redirects back with a code (user name `deny`: `error=access_denied`); `/token` redeems a
 * code once, checks PKCE S256, and answers an ID token with the request's nonce and `aud` = the
 * client id. Only the one client id is known.
 */
export async function startOidcProvider(opts: { clientId?: string } = {}): Promise<OidcProvider> {
  const clientId = opts.clientId ?? "keyward";
  const pending = new Map<string, PendingSignIn>();
  const codes = new Map<string, IssuedCode>();
  let provider: OidcProvider | undefined;

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const p = provider as OidcProvider;
    if (url.pathname === "/authorize" && req.method === "GET") {
      const q = url.searchParams;
      p.lastAuthorize = q;
      if (
        q.get("client_id") !== clientId ||
        q.get("response_type") !== "code" ||
        q.get("code_challenge_method") !== "S256" ||
        !q.get("redirect_uri") ||
        !q.get("state") ||
        !q.get("nonce")
      ) {
        res.writeHead(400, { "content-type": "text/plain" }).end("bad authorization request");
        return true;
      }
      const id = randomBytes(16).toString("hex");
      pending.set(id, {
        clientId,
        redirectUri: q.get("redirect_uri") as string,
        state: q.get("state") as string,
        nonce: q.get("nonce") as string,
        challenge: q.get("code_challenge") as string,
      });
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(LOGIN_PAGE(id));
      return true;
    }
    if (url.pathname === "/authorize" && req.method === "POST") {
      void read(req).then((body) => {
        const form = new URLSearchParams(body);
        const sign = pending.get(form.get("request") ?? "");
        const username = form.get("username") ?? "";
        if (!sign || username === "") {
          res.writeHead(400, { "content-type": "text/plain" }).end("unknown sign-in");
          return;
        }
        pending.delete(form.get("request") ?? "");
        const back = new URL(sign.redirectUri);
        back.searchParams.set("state", sign.state);
        if (username === "deny") {
          back.searchParams.set("error", "access_denied");
        } else {
          const code = randomBytes(16).toString("hex");
          codes.set(code, { ...sign, username });
          p.issued++;
          back.searchParams.set("code", code);
        }
        res.writeHead(302, { location: back.toString() }).end();
      });
      return true;
    }
    if (url.pathname === "/token" && req.method === "POST") {
      p.lastTokenAuthorization = req.headers.authorization;
      void read(req).then((body) => {
        const form = new URLSearchParams(body);
        const code = codes.get(form.get("code") ?? "");
        const fail = (error: string) =>
          res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error }));
        if (!code) return fail("invalid_grant");
        codes.delete(form.get("code") ?? "");
        if (form.get("client_id") !== code.clientId || form.get("redirect_uri") !== code.redirectUri) {
          return fail("invalid_grant");
        }
        const verifier = form.get("code_verifier") ?? "";
        if (createHash("sha256").update(verifier).digest("base64url") !== code.challenge) return fail("invalid_grant");
        p.redeemed++;
        const idToken = p.sign({
          sub: code.username,
          aud: p.forceAudience ?? clientId,
          nonce: p.forceNonce ?? code.nonce,
          ...p.claimsFor(code.username),
        });
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ access_token: "idp-access", token_type: "Bearer", id_token: idToken }));
      });
      return true;
    }
    return false;
  };

  const issuer = await startOidcIssuer({
    discovery: () => ({
      authorization_endpoint: `${issuer.url}/authorize`,
      token_endpoint: `${issuer.url}/token`,
      response_types_supported: ["code"],
      code_challenge_methods_supported: ["S256"],
    }),
    handle,
  });
  provider = Object.assign(issuer, {
    clientId,
    lastAuthorize: undefined,
    issued: 0,
    redeemed: 0,
    claimsFor: () => ({}),
    forceNonce: undefined,
    forceAudience: undefined,
    lastTokenAuthorization: undefined,
  }) as OidcProvider;
  return provider;
}
