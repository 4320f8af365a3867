import type { KeywardError } from "../errors.js";
import { checkValue } from "./credential-rules.js";
import type { ProviderConfig } from "./credentials-service.js";

/** A token endpoint that failed or answered something unusable. The message is safe to show and store. */
export class TokenEndpointError extends Error {
  override readonly name = "TokenEndpointError";
}

export interface FetchedToken {
  accessToken: string;
  /** Seconds, as the endpoint said (or the default when it did not say). */
  expiresIn: number;
}

/** RFC 6749 makes `expires_in` optional; without it we assume little, so the token is refreshed early. */
export const DEFAULT_LIFETIME_S = 300;
const MAX_LIFETIME_S = 366 * 86_400;
const MAX_RESPONSE_BYTES = 256 * 1024;

/**
 * One RFC 6749 §4.4 client-credentials request. The client authenticates in the body
 * (`client_id`, `client_secret`), which every major provider accepts, Azure AD included.
 * Redirects are not followed: the body carries the secret, and a 307 would resend it elsewhere.
 * Nothing from the response reaches an error message except its status and a short OAuth error code.
 */
export async function requestToken(
  config: ProviderConfig,
  clientSecret: Buffer,
  opts: { timeoutMs: number; fetch?: typeof fetch },
): Promise<FetchedToken> {
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: config.client_id,
    client_secret: clientSecret.toString("utf8"),
  });
  if (config.scope) form.set("scope", config.scope);
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(config.token_url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw new TokenEndpointError(`token endpoint unreachable (${networkReason(err, opts.timeoutMs)})`);
  }
  const text = await readLimited(res);
  if (res.status < 200 || res.status > 299) {
    const code = oauthError(text);
    throw new TokenEndpointError(`token endpoint answered ${res.status}${code ? ` (${code})` : ""}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TokenEndpointError(`token endpoint answered ${res.status} with a body that is not JSON`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new TokenEndpointError("token endpoint answered with JSON that is not an object");
  }
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== "string" || b.access_token === "") {
    throw new TokenEndpointError("token endpoint answered without an access_token");
  }
  if (b.token_type !== undefined && (typeof b.token_type !== "string" || b.token_type.toLowerCase() !== "bearer")) {
    throw new TokenEndpointError("token endpoint answered with a token_type other than Bearer");
  }
  try {
    checkValue(b.access_token, "access_token");
  } catch (err) {
    throw new TokenEndpointError(
      `token endpoint answered with an unusable access_token: ${(err as KeywardError).message}`,
    );
  }
  return { accessToken: b.access_token, expiresIn: lifetime(b.expires_in) };
}

function lifetime(raw: unknown): number {
  if (raw === undefined || raw === null) return DEFAULT_LIFETIME_S;
  // Some providers (Azure AD v1) send it as a string of digits.
  const n = typeof raw === "string" && /^\d{1,10}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isFinite(n) || n <= 0 || n > MAX_LIFETIME_S) {
    throw new TokenEndpointError("token endpoint answered with an invalid expires_in");
  }
  return n;
}

async function readLimited(res: Response): Promise<string> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    let part: Awaited<ReturnType<typeof reader.read>>;
    try {
      part = await reader.read();
    } catch {
      throw new TokenEndpointError("token endpoint closed the connection mid-answer");
    }
    if (part.done) break;
    size += part.value.length;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel().catch(() => {});
      throw new TokenEndpointError(`token endpoint answered with more than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(part.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The RFC 6749 `error` code of an error body, if it looks like one (never free text). */
function oauthError(text: string): string | undefined {
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    return typeof e === "string" && /^[a-z_]{1,64}$/i.test(e) ? e : undefined;
  } catch {
    return undefined;
  }
}

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: unknown } };
  if (e.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  const code = e.cause?.code;
  return typeof code === "string" && /^[A-Z_]{1,32}$/.test(code) ? code : "connection failed";
}
