import { isIPv4 } from "node:net";
import { z } from "zod";
import { USER_PREFIX_HINT, USER_PREFIX_RULE } from "./issuer-namespaces.js";

// `trusted_issuers:` in the config file (SPEC §8): one entry per external issuer whose JWTs are
// exchanged. config.ts validates the list with this schema; tokens/ owns the type.

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** An http(s) URL that must be https, except on loopback (a local test issuer); `what` names it in the error. */
export function httpsOrLoopbackUrl(what: string) {
  return z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).refine(
    (u) => {
      // zod runs this refine even when z.url() already failed: that failure is the one to report.
      if (!URL.canParse(u)) return true;
      return isHttpsOrLoopback(new URL(u));
    },
    { message: `${what} must be https (plain http only on loopback)` },
  );
}

/** https, or http on a loopback host (`localhost`, 127.0.0.0/8, [::1]). */
export function isHttpsOrLoopback(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

/** `localhost`, an IPv4 address in 127.0.0.0/8 or `[::1]` (as URL.hostname spells them). */
export function isLoopbackHost(hostname: string): boolean {
  // isIPv4 first: a name such as `127.example.com` is not loopback, whatever its first label says.
  return LOOPBACK_HOSTS.has(hostname) || (isIPv4(hostname) && hostname.startsWith("127."));
}

/** `jwks_uri` must be https, except on loopback (a local test issuer). */
export const jwksUri = httpsOrLoopbackUrl("jwks_uri");

/** Signature algorithms accepted from an external issuer (pinned; never `none` or HMAC). */
export const externalAlgorithms = z
  .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]))
  .min(1)
  .default(["RS256", "ES256"]);

export const trustedIssuerSchema = z
  .object({
    issuer: z.string().min(1),
    jwks_uri: jwksUri,
    /** The `aud` the external JWT must carry (one of them, when a list). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The claim that becomes `user:<user_prefix><value>` (default `sub`); `email` needs `email_verified: true`. */
    subject_claim: z.string().min(1).default("sub"),
    /** Put before the claim's value, so each issuer's users are apart (tokens/issuer-namespaces.ts). */
    user_prefix: z.string().regex(USER_PREFIX_RULE, USER_PREFIX_HINT).optional(),
    /** No prefix, on purpose: this issuer's users are the `user:<id>` of admin-made keys. */
    share_user_ids_with_keys: z.boolean().default(false),
    /** The scopes the minted user token carries. */
    scopes: z.array(z.string().min(1).regex(/^\S+$/, "a scope has no spaces")).default([]),
    /** Signature algorithms accepted from this issuer (pinned; never `none` or HMAC). */
    algorithms: externalAlgorithms,
  })
  .strict();

export type TrustedIssuerConfig = z.infer<typeof trustedIssuerSchema>;
