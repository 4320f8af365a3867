import { readBoundedText } from "../http/bounded-response.js";
import { isHttpsOrLoopback } from "../tokens/trusted-issuers-config.js";

/** What a provider's discovery document and token answer may weigh, and how long they may take. */
const MAX_ANSWER_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 5000;
/** The discovery document is cached this long (a failure is not cached). */
const DISCOVERY_TTL_MS = 3_600_000;

/** The provider failed us (unreachable, an error, an answer we cannot use): never carries its body. */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProviderError";
  }
}

export interface ProviderEndpoints {
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

export interface SignInProviderDeps {
  issuer: string;
  clientId: string;
  clientSecret?: string | undefined;
  now: () => number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * The user's identity provider as an OIDC relying party sees it: its endpoints, from
 * `<issuer>/.well-known/openid-configuration` (https, or http on loopback, like `jwks_uri`),
 * fetched bounded in size and time and cached; and the authorization-code exchange at its token
 * endpoint. Redirects are not followed (the exchange carries a code and maybe a secret). The ID
 * token it returns is verified elsewhere (tokens/trusted-issuers.ts), never here.
 */
export function createSignInProvider(deps: SignInProviderDeps) {
  const doFetch = deps.fetch ?? fetch;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let cached: { endpoints: ProviderEndpoints; at: number } | undefined;
  let loading: Promise<ProviderEndpoints> | undefined;

  async function call(url: string, init: RequestInit, what: string): Promise<{ status: number; body: unknown }> {
    let res: Response;
    try {
      res = await doFetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      throw new ProviderError(`the identity provider's ${what} is unreachable`);
    }
    let text: string;
    try {
      text = await readBoundedText(res, MAX_ANSWER_BYTES);
    } catch {
      throw new ProviderError(`the identity provider's ${what} answer is too large or broken`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProviderError(`the identity provider's ${what} answered ${res.status} without JSON`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new ProviderError(`the identity provider's ${what} answered with JSON that is not an object`);
    }
    return { status: res.status, body };
  }

  function endpoint(value: unknown, name: string): string {
    if (
      typeof value !== "string" ||
      value.length > 2000 ||
      !URL.canParse(value) ||
      !isHttpsOrLoopback(new URL(value))
    ) {
      throw new ProviderError(`the identity provider's ${name} is missing or not https`);
    }
    return value;
  }

  async function discover(): Promise<ProviderEndpoints> {
    const url = `${deps.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const { status, body } = await call(url, { headers: { accept: "application/json" } }, "discovery document");
    if (status !== 200) throw new ProviderError(`the identity provider's discovery document answered ${status}`);
    const doc = body as Record<string, unknown>;
    if (doc.issuer !== deps.issuer)
      throw new ProviderError("the identity provider's discovery document names another issuer");
    return {
      authorizationEndpoint: endpoint(doc.authorization_endpoint, "authorization_endpoint"),
      tokenEndpoint: endpoint(doc.token_endpoint, "token_endpoint"),
    };
  }

  return {
    /** The provider's endpoints (cached an hour; one fetch at a time). Throws ProviderError. */
    async endpoints(): Promise<ProviderEndpoints> {
      if (cached && deps.now() - cached.at < DISCOVERY_TTL_MS) return cached.endpoints;
      loading ??= discover()
        .then((endpoints) => {
          cached = { endpoints, at: deps.now() };
          return endpoints;
        })
        .finally(() => {
          loading = undefined;
        });
      return loading;
    },

    /** The authorization-code exchange (with our PKCE verifier); returns the ID token. Throws ProviderError. */
    async exchange(code: string, redirectUri: string, verifier: string): Promise<string> {
      const { tokenEndpoint } = await this.endpoints();
      const form = new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: deps.clientId,
      });
      const headers: Record<string, string> = {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      };
      if (deps.clientSecret !== undefined) {
        const enc = (s: string) => encodeURIComponent(s).replaceAll("%20", "+");
        headers.authorization = `Basic ${Buffer.from(`${enc(deps.clientId)}:${enc(deps.clientSecret)}`).toString("base64")}`;
      }
      const { status, body } = await call(
        tokenEndpoint,
        { method: "POST", headers, body: form.toString() },
        "token endpoint",
      );
      const answer = body as Record<string, unknown>;
      if (status !== 200) {
        const code =
          typeof answer.error === "string" && /^[a-z_]{1,40}$/.test(answer.error) ? ` (${answer.error})` : "";
        throw new ProviderError(`the identity provider's token endpoint answered ${status}${code}`);
      }
      if (typeof answer.id_token !== "string" || answer.id_token.length > 16_384) {
        throw new ProviderError("the identity provider's token endpoint answered without an id_token");
      }
      return answer.id_token;
    },
  };
}

export type SignInProvider = ReturnType<typeof createSignInProvider>;
