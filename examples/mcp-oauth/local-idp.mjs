// A local OpenID Connect provider for the example: the user's identity provider (a company's
// sign-in, Google, Entra ID…) in 120 lines. `/authorize` shows a sign-in form (a user name, no
// password: it is a demo), `/token` redeems the code once (PKCE S256 checked) for an ID token
// signed RS256 with the nonce Keyward sent, `/jwks` publishes the key, and
// `/.well-known/openid-configuration` says where all of it is. Not for real use.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const html = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

async function readForm(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16_384) throw new Error("too large");
  }
  return new URLSearchParams(body);
}

/** Starts the provider on 127.0.0.1 (a free port unless `port`); resolves with `{url, close}`. */
export async function startLocalIdp({ clientId = "keyward", port = 0 } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomBytes(8).toString("hex");
  const pending = new Map();
  const codes = new Map();
  let url = "";

  function idToken(claims) {
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64({ alg: "RS256", typ: "JWT", kid })}.${b64({ iss: url, iat: now, exp: now + 300, ...claims })}`;
    return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
  }

  const server = createServer(async (req, res) => {
    const u = new URL(req.url ?? "/", url);
    const json = (status, body) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    try {
      if (u.pathname === "/.well-known/openid-configuration") {
        return json(200, {
          issuer: url,
          authorization_endpoint: `${url}/authorize`,
          token_endpoint: `${url}/token`,
          jwks_uri: `${url}/jwks`,
          response_types_supported: ["code"],
          id_token_signing_alg_values_supported: ["RS256"],
          code_challenge_methods_supported: ["S256"],
          subject_types_supported: ["public"],
        });
      }
      if (u.pathname === "/jwks") {
        return json(200, { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] });
      }
      if (u.pathname === "/authorize" && req.method === "GET") {
        const q = u.searchParams;
        if (q.get("client_id") !== clientId || q.get("code_challenge_method") !== "S256" || !q.get("redirect_uri")) {
          return res.writeHead(400, { "content-type": "text/plain" }).end("bad authorization request");
        }
        const id = randomBytes(16).toString("hex");
        pending.set(id, Object.fromEntries(q));
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        return res.end(`<!doctype html><title>Example IdP</title><h1>Sign in (example identity provider)</h1>
<form method="post" action="/authorize"><input type="hidden" name="request" value="${html(id)}">
<label>User name <input name="username" autofocus></label> <button type="submit">Sign in</button></form>`);
      }
      if (u.pathname === "/authorize" && req.method === "POST") {
        const form = await readForm(req);
        const request = pending.get(form.get("request") ?? "");
        const username = form.get("username") ?? "";
        if (!request || !/^[a-z][a-z0-9._-]{0,63}$/.test(username)) {
          return res.writeHead(400, { "content-type": "text/plain" }).end("unknown request or bad user name");
        }
        pending.delete(form.get("request"));
        const code = randomBytes(24).toString("base64url");
        codes.set(code, { ...request, username });
        const back = new URL(request.redirect_uri);
        back.searchParams.set("code", code);
        back.searchParams.set("state", request.state ?? "");
        return res.writeHead(302, { location: back.toString() }).end();
      }
      if (u.pathname === "/token" && req.method === "POST") {
        const form = await readForm(req);
        const grant = codes.get(form.get("code") ?? "");
        codes.delete(form.get("code") ?? "");
        const verifier = form.get("code_verifier") ?? "";
        if (
          !grant ||
          form.get("redirect_uri") !== grant.redirect_uri ||
          createHash("sha256").update(verifier).digest("base64url") !== grant.code_challenge
        ) {
          return json(400, { error: "invalid_grant" });
        }
        return json(200, {
          access_token: randomBytes(16).toString("hex"),
          token_type: "Bearer",
          expires_in: 300,
          id_token: idToken({ sub: grant.username, aud: clientId, nonce: grant.nonce }),
        });
      }
      res.writeHead(404).end();
    } catch {
      res.writeHead(400).end();
    }
  });
  await new Promise((ready) => server.listen(port, "127.0.0.1", ready));
  url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
