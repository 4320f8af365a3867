// An MCP client that knows only the URL of an MCP server: the official MCP SDK's
// StreamableHTTPClientTransport with an OAuthClientProvider. On the first 401 the SDK reads the
// protected resource metadata, Keyward's authorization server metadata, registers itself
// (RFC 7591), and sends the user to sign in (PKCE, resource = the MCP server). The user's browser
// comes back to a loopback listener (RFC 8252) with a code; the SDK redeems it and calls the tool.
//   node examples/mcp-oauth/client.mjs            (starts the example, signs alice in, calls, stops)
//   node examples/mcp-oauth/client.mjs <mcp-url>  (against a running one: prints the URL to open)
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startExample } from "./start.mjs";

/** The loopback listener the browser is sent back to: resolves with the code (or the error). */
async function listenForCallback() {
  let done;
  const result = new Promise((resolve) => (done = resolve));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/callback") return res.writeHead(404).end();
    res
      .writeHead(200, { "content-type": "text/html" })
      .end("<!doctype html><p>Signed in. You may close this window.</p>");
    done({ code: url.searchParams.get("code"), error: url.searchParams.get("error") });
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return { redirectUri: `http://127.0.0.1:${server.address().port}/callback`, result, close: () => server.close() };
}

/** What the SDK asks an application to keep: its registration, tokens and PKCE verifier (here, in memory). */
class ExampleProvider {
  constructor(redirectUri, openBrowser) {
    this.redirectUri = redirectUri;
    this.openBrowser = openBrowser;
  }
  get redirectUrl() {
    return this.redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: "Keyward mcp-oauth example",
      redirect_uris: [this.redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  redirectToAuthorization(url) {
    return this.openBrowser(url);
  }
}

/**
 * The user's part, scripted over HTTP so the example runs unattended: follow the authorization
 * URL to the IdP's sign-in form, sign in as `username`, and press Approve on Keyward's consent
 * page (a desktop client opens the URL in the user's browser instead).
 */
export function scriptedBrowser(username) {
  const jars = new Map();
  async function go(url, { method = "GET", form } = {}) {
    const origin = new URL(url).origin;
    const jar = jars.get(origin) ?? new Map();
    jars.set(origin, jar);
    const headers = jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") } : {};
    if (form) Object.assign(headers, { "content-type": "application/x-www-form-urlencoded", origin });
    const res = await fetch(url, {
      method,
      headers,
      redirect: "manual",
      body: form && new URLSearchParams(form).toString(),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      jar.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1));
    }
    const next = res.headers.get("location");
    if (res.status === 302 && next) return go(new URL(next, url).toString());
    return { url, text: await res.text(), status: res.status };
  }
  const field = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? "";
  const action = (html, base) => new URL(/<form method="post" action="([^"]*)"/.exec(html)?.[1] ?? "", base).toString();
  return async (authorizationUrl) => {
    const login = await go(authorizationUrl.toString());
    console.log(`browser: ${new URL(login.url).origin} asks who is signing in -> ${username}`);
    const consent = await go(action(login.text, login.url), {
      method: "POST",
      form: { request: field(login.text, "request"), username },
    });
    if (consent.status !== 200) throw new Error(`sign-in failed: ${consent.status} ${consent.text.slice(0, 200)}`);
    const asked = /<h1>(.*?)<\/h1>/.exec(consent.text)?.[1]?.replace(/<[^>]+>/g, "") ?? "";
    console.log(`browser: Keyward asks "${asked}" -> Approve`);
    await go(action(consent.text, consent.url), {
      method: "POST",
      form: { consent: field(consent.text, "consent"), csrf: field(consent.text, "csrf"), decision: "approve" },
    });
  };
}

/** Connects to `mcpUrl` knowing nothing else, signing the user in with `openBrowser`; resolves with a connected Client. */
export async function connectWithSignIn(mcpUrl, openBrowser) {
  const listener = await listenForCallback();
  const provider = new ExampleProvider(listener.redirectUri, openBrowser);
  try {
    const transport = () => new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    const first = new Client({ name: "mcp-oauth-example", version: "0.1.0" });
    try {
      await first.connect(transport());
      return first; // already signed in (tokens kept from before)
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
    }
    const { code, error } = await listener.result;
    if (!code) throw new Error(`sign-in refused: ${error}`);
    await transport().finishAuth(code);
    console.log(
      `signed in: registered as ${provider.client.client_id}, token for ${mcpUrl} (scope ${provider.saved.scope})`,
    );
    const client = new Client({ name: "mcp-oauth-example", version: "0.1.0" });
    await client.connect(transport());
    return client;
  } finally {
    listener.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const given = process.argv[2];
  const example = given ? undefined : await startExample();
  const mcpUrl = given ?? example.mcpUrl;
  const open = given
    ? (url) => console.log(`open this URL in your browser and sign in:\n  ${url}`)
    : scriptedBrowser("alice");
  try {
    console.log(`MCP endpoint ${mcpUrl} (nothing else is configured in this client)`);
    const client = await connectWithSignIn(mcpUrl, open);
    const { tools } = await client.listTools();
    console.log(`tools: ${tools.map((t) => t.name).join(", ")}`);
    const result = await client.callTool({ name: "list_functions", arguments: {} });
    console.log(`list_functions -> ${result.content.map((c) => c.text).join("")}`);
    await client.close();
  } finally {
    await example?.close();
  }
}
