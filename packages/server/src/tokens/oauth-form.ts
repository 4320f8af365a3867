import type { IncomingMessage } from "node:http";
import { readBody } from "../http/body.js";
import { OAuthError } from "./oauth-errors.js";

/**
 * The parameters of an OAuth request: `application/x-www-form-urlencoded` as RFC 6749 requires,
 * or a JSON object of strings (Dify-style clients send JSON). A parameter given twice is refused
 * (RFC 6749 §3.2) in either form — JSON.parse keeps the last of duplicate keys, so a JSON body is
 * scanned for them — as is anything that is not a string.
 */
/**
 * An OAuth request is a few parameters; the largest is a subject or actor token (an IdP's ID
 * token runs to a few KiB). 64 KiB leaves room for any of them and bounds what parsing and the
 * duplicate scan of an outsider's body can cost (1 MiB of `[[[[` took ~300 ms of event loop).
 */
export const OAUTH_BODY_BYTES = 64 * 1024;

export async function readOAuthParams(req: IncomingMessage): Promise<Map<string, string>> {
  const raw = await readBody(req, OAUTH_BODY_BYTES);
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  const text = raw.toString("utf8");
  if (text.includes("\u0000") || text.includes("%00")) {
    throw new OAuthError("invalid_request", "parameters must not contain NUL characters");
  }
  const params = new Map<string, string>();
  if (raw.length === 0) return params;
  if (/^application\/([a-z0-9.+-]*\+)?json\b/.test(type)) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new OAuthError("invalid_request", "request body is not valid JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new OAuthError("invalid_request", "request body must be a JSON object");
    }
    const seen = new Set<string>();
    for (const k of topLevelKeys(text)) {
      if (seen.has(k)) throw new OAuthError("invalid_request", `${k}: given more than once`);
      seen.add(k);
    }
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) continue;
      if (typeof v === "number" && Number.isFinite(v)) params.set(k, String(v));
      else if (typeof v === "string") params.set(k, v);
      else throw new OAuthError("invalid_request", `${k}: must be a string`);
    }
    return params;
  }
  if (!type.startsWith("application/x-www-form-urlencoded")) {
    throw new OAuthError("invalid_request", "send application/x-www-form-urlencoded or application/json");
  }
  for (const [k, v] of new URLSearchParams(text)) {
    if (params.has(k)) throw new OAuthError("invalid_request", `${k}: given more than once`);
    params.set(k, v);
  }
  return params;
}

/**
 * The keys of the top-level object of `text`, in order, duplicates kept. `text` must already be
 * known to be valid JSON holding an object: then every string right after the outer `{` or a `,`
 * at depth 1 is a key. One pass over the text (each key decoded once), whatever it holds.
 */
export function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
      if (depth === 1 && keyNext) keys.push(JSON.parse(text.slice(start, i + 1)) as string);
      keyNext = false;
    } else if (c === "{" || c === "[") {
      depth++;
      keyNext = depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      keyNext = true;
    }
  }
  return keys;
}

/** A required parameter; `invalid_request` naming it when absent or empty. */
export function required(params: Map<string, string>, name: string): string {
  const v = params.get(name);
  if (v === undefined || v === "") throw new OAuthError("invalid_request", `${name}: required`);
  return v;
}

/** Splits a space-separated scope string (RFC 6749 §3.3); undefined when not given. */
export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const scopes = value.split(" ").filter((s) => s !== "");
  if (scopes.some((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) {
    throw new OAuthError("invalid_scope", "scope contains characters RFC 6749 does not allow");
  }
  return [...new Set(scopes)];
}
