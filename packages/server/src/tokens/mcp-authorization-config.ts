import { z } from "zod";
import type { TrustedIssuerConfig } from "./trusted-issuers-config.js";
import { httpsOrLoopbackUrl } from "./trusted-issuers-config.js";

// `mcp_authorization:` in the config file (SPEC §12): where MCP clients' users sign in, and the
// registration policy. config.ts validates it with this schema. It lives in tokens/ beside
// trusted_issuers, whose entries it names, so that config.ts need not depend on oauth/.

/** A host name for https redirect URIs (no scheme, port, path or wildcard). */
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export const mcpAuthorizationSchema = z
  .object({
    /** The identity provider users sign in at (OIDC authorization-code flow with PKCE). */
    sign_in: z
      .object({
        /** Must equal a `trusted_issuers` entry's `issuer`: its JWKS, audience and rules verify the ID token. */
        issuer: httpsOrLoopbackUrl("sign_in.issuer"),
        client_id: z.string().min(1).max(255),
        /** Env KEYWARD_MCP_SIGN_IN_CLIENT_SECRET; absent: a public client (PKCE only). */
        client_secret: z.string().min(1).max(1024).optional(),
        /** Asked of the provider. */
        scopes: z
          .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "a scope has no spaces or quotes"))
          .min(1)
          .max(32)
          .default(["openid"])
          .refine((s) => s.includes("openid"), { message: "must include openid" }),
      })
      .strict()
      .optional(),
    /** https redirect URIs on these hosts are accepted at registration, besides loopback ones. */
    redirect_hosts: z
      .array(z.string().toLowerCase().regex(HOST, "a host name, without scheme, port or path"))
      .max(100)
      .default([]),
    /** Registrations kept; beyond it registration is refused (503) until an admin removes some. */
    max_clients: z.coerce.number().int().min(1).max(1_000_000).default(1000),
    /** Registrations one address may make per minute. */
    registrations_per_minute: z.coerce.number().int().min(1).max(10_000).default(10),
    /** Authorization requests waiting for sign-in or consent, at most. */
    max_pending: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();

export type McpAuthorizationConfig = z.infer<typeof mcpAuthorizationSchema>;

/** The sign-in issuer must be a trusted issuer whose audience includes the client id (checked at boot). */
export function signInProblem(
  config: McpAuthorizationConfig | undefined,
  issuers: readonly TrustedIssuerConfig[],
): string | undefined {
  const signIn = config?.sign_in;
  if (signIn === undefined) return undefined;
  const entries = issuers.filter((i) => i.issuer === signIn.issuer);
  if (entries.length === 0) return "sign_in.issuer must equal the issuer of a trusted_issuers entry";
  const audiences = entries.flatMap((e) => (Array.isArray(e.audience) ? e.audience : [e.audience]));
  if (!audiences.includes(signIn.client_id)) {
    return "sign_in.client_id must be among that trusted_issuers entry's audience (ID tokens are issued to it)";
  }
  return undefined;
}
