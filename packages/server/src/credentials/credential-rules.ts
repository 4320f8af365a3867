import { CREDENTIAL_NAME } from "@keyward/sdk/names";
import { KeywardError } from "../errors.js";

/**
 * What a credential name, value and egress template may be. Checked once, at the edge (routes)
 * and again where values enter from elsewhere (token providers), so nothing the store holds can
 * break a URL path, a header or a JSON body later.
 */

/**
 * Slug-like. Never only dots (`.` and `..` cannot be a URL path segment), never `__proto__` (as an
 * object key in a client it would replace the object's prototype instead of naming a value).
 */
export { CREDENTIAL_NAME };
export const CREDENTIAL_NAME_HINT = "must be 1-128 characters of A-Z a-z 0-9 _ . - (not only dots, not __proto__)";

/** A value is a secret string, not a file: 64 KiB covers PEM bundles and long JWTs. */
export const MAX_VALUE_BYTES = 64 * 1024;

export function isCredentialName(name: string): boolean {
  return CREDENTIAL_NAME.test(name);
}

/**
 * Throws 400/413 for a value Keyward would not hand back byte for byte: empty, too large, or with
 * a lone UTF-16 surrogate (UTF-8 cannot encode it, so it would come back as U+FFFD).
 */
export function checkValue(value: string, field = "value"): void {
  if (value.length === 0) throw new KeywardError("invalid_request", `${field}: must not be empty`);
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_VALUE_BYTES) {
    throw new KeywardError("payload_too_large", `${field}: is ${bytes} bytes; the limit is ${MAX_VALUE_BYTES}`);
  }
  if (LONE_SURROGATE.test(value)) {
    throw new KeywardError("invalid_request", `${field}: must be valid Unicode (it holds a lone surrogate)`);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface EgressConfig {
  base_url: string;
  header: string;
  format: string;
}

export interface EgressInput {
  base_url: string;
  header?: string | undefined;
  format?: string | undefined;
}

/** RFC 9110 field-name token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Headers the proxy itself owns: injecting into them would break framing or routing. */
const RESERVED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "proxy-connection",
  "proxy-authorization",
]);
/** Visible ASCII, space and tab: nothing that could end the header line or smuggle another. */
const HEADER_VALUE_TEMPLATE = /^[\x20-\x7e\t]{1,512}$/;

/**
 * Validates and completes an egress template. `header` defaults to Authorization; `format`
 * defaults to `Bearer {value}` for Authorization and to the bare `{value}` for any other header
 * (an `X-Api-Key: Bearer …` would be wrong for every API we know).
 */
export function parseEgress(input: EgressInput): EgressConfig {
  let url: URL;
  try {
    url = new URL(input.base_url);
  } catch {
    throw invalid("egress.base_url: must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid("egress.base_url: must be http or https");
  if (url.username || url.password) throw invalid("egress.base_url: must not contain credentials");
  if (url.search || url.hash || input.base_url.includes("?") || input.base_url.includes("#")) {
    throw invalid("egress.base_url: must not have a query or fragment");
  }
  const header = input.header ?? "Authorization";
  if (!HEADER_NAME.test(header)) throw invalid("egress.header: must be a valid HTTP header name");
  if (RESERVED_HEADERS.has(header.toLowerCase())) throw invalid(`egress.header: ${header} cannot carry a credential`);
  const format = input.format ?? (header.toLowerCase() === "authorization" ? "Bearer {value}" : "{value}");
  if (!HEADER_VALUE_TEMPLATE.test(format)) {
    throw invalid("egress.format: must be 1-512 printable ASCII characters");
  }
  if (!format.includes("{value}")) throw invalid("egress.format: must contain {value}");
  return { base_url: url.href, header, format };
}

/**
 * A token endpoint receives the client secret, so it must be https, except on loopback (local
 * development and tests), like the JWKS rule of SPEC §8.
 */
export function checkTokenUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid("token_url: must be an absolute https URL");
  }
  if (url.username || url.password) throw invalid("token_url: must not contain credentials");
  if (url.hash) throw invalid("token_url: must not have a fragment");
  if (url.protocol === "https:") return url.href;
  if (url.protocol === "http:" && isLoopback(url.hostname)) return url.href;
  throw invalid("token_url: must be https (http is accepted on loopback only)");
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const invalid = (message: string) => new KeywardError("invalid_request", message);
