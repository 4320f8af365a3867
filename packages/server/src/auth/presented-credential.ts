import type { IncomingHttpHeaders } from "node:http";

/**
 * The credential a request presents: `Authorization: Bearer …` or `X-API-Key`. A bearer value
 * starting `kwk_` is judged as a key, anything else as a token (SPEC §4). An Authorization header
 * of another scheme is a credential we cannot accept: `{value: "", asKey: false}`.
 */
export function presentedCredential(headers: IncomingHttpHeaders): { value: string; asKey: boolean } | undefined {
  const auth = headers.authorization;
  const bearer = auth === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
  if (bearer !== undefined) return { value: bearer, asKey: bearer.startsWith("kwk_") };
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string") return { value: apiKey.trim(), asKey: true };
  if (auth !== undefined && auth.trim() !== "") return { value: "", asKey: false };
  return undefined;
}
