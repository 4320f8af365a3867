import { createHmac, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type IssuerAlg = "RS256" | "ES256";

export interface SignOptions {
  /** Which of the issuer's keys signs (default RS256). `none` and `HS256` forge instead, see below. */
  alg?: IssuerAlg | "none" | "HS256";
  /** Overrides the signing key's kid in the header (the signature is still the real key's). */
  kid?: string;
  /** Merged over the header last: `{jku: …}`, `{alg: …}`, `{kid: undefined}` for attack cases. */
  header?: Record<string, unknown>;
}

/**
 * What `/jwks` answers: the keys, a 500, a 200 that is not JSON, or the keys in a 2 MiB JSON body
 * sent chunked (no content-length), so only a reader that counts refuses it.
 */
export type JwksMode = "ok" | "error" | "garbage" | "huge";

export interface OidcIssuer {
  /** The issuer URL (`iss`), `http://127.0.0.1:<port>`. */
  url: string;
  jwksUri: string;
  /** How many times `/jwks` was requested. */
  jwksHits: number;
  jwksMode: JwksMode;
  /** Mints a JWT; `iss` = `url`, `iat` = now and `exp` = now + 10 min unless `claims` set them. */
  sign(claims: Record<string, unknown>, opts?: SignOptions): string;
  /** The current kid for `alg`. */
  kid(alg?: IssuerAlg): string;
  /** The current public key as PEM (for the HS256-with-the-public-key forgery). */
  publicPem(alg?: IssuerAlg): string;
  /** New RS256 and ES256 keys with new kids; the old ones leave the JWKS. */
  rotate(): void;
  close(): Promise<void>;
}

interface IssuerKey {
  kid: string;
  alg: IssuerAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function newKeys(): Record<IssuerAlg, IssuerKey> {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    RS256: { kid: `rs-${randomUUID()}`, alg: "RS256", ...rsa },
    ES256: { kid: `es-${randomUUID()}`, alg: "ES256", ...ec },
  };
}

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/**
 * A local OIDC-style identity provider for tests, on node:http at 127.0.0.1 on a free port:
 * `/.well-known/openid-configuration` and `/jwks` (or `jwksPath`, as a cluster's `/openid/v1/jwks`),
 * with RS256 and ES256 keys made by node:crypto.
 */
export async function startOidcIssuer(
  opts: {
    jwksPath?: string;
    /** More of the discovery document (a provider's endpoints: oidc-provider.ts). */
    discovery?: () => Record<string, unknown>;
    /** Other paths: answers and returns true, or false for a 404. */
    handle?: (req: IncomingMessage, res: ServerResponse) => boolean;
  } = {},
): Promise<OidcIssuer> {
  // A Kubernetes API server publishes its service-account keys at /openid/v1/jwks.
  const jwksPath = opts.jwksPath ?? "/jwks";
  let keys = newKeys();
  const publicJwks = () =>
    Object.values(keys).map((k) => ({ ...k.publicKey.export({ format: "jwk" }), kid: k.kid, alg: k.alg, use: "sig" }));
  const server: Server = createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration") {
      const body = JSON.stringify({
        issuer: issuer.url,
        jwks_uri: issuer.jwksUri,
        id_token_signing_alg_values_supported: ["RS256", "ES256"],
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        ...opts.discovery?.(),
      });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
      return;
    }
    if (req.url !== jwksPath) {
      if (opts.handle?.(req, res)) return;
      res.writeHead(404).end();
      return;
    }
    issuer.jwksHits++;
    switch (issuer.jwksMode) {
      case "error":
        res.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded");
        return;
      case "garbage":
        res.writeHead(200, { "content-type": "application/json" }).end("<html>not json</html>");
        return;
      case "huge": {
        // The real keys, padded past 1 MiB: accepted only by a reader that does not count.
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`{"keys":${JSON.stringify(publicJwks())},"padding":"`);
        for (let i = 0; i < 32; i++) res.write("A".repeat(64 * 1024));
        res.end('"}');
        return;
      }
      default:
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: publicJwks() }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const issuer: OidcIssuer = {
    url,
    jwksUri: `${url}${jwksPath}`,
    jwksHits: 0,
    jwksMode: "ok",

    sign(claims, opts = {}) {
      const alg = opts.alg ?? "RS256";
      const key = keys[alg === "ES256" ? "ES256" : "RS256"];
      const header = { alg, typ: "JWT", kid: opts.kid ?? key.kid, ...opts.header };
      const nowS = Math.floor(Date.now() / 1000);
      const payload = { iss: url, iat: nowS, exp: nowS + 600, ...claims };
      const input = `${b64(header)}.${b64(payload)}`;
      if (alg === "none") return `${input}.`;
      if (alg === "HS256") {
        // The classic confusion attack: the public key, which anyone can fetch, used as an HMAC secret.
        const secret = key.publicKey.export({ format: "pem", type: "spki" });
        return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
      }
      const signature = sign("sha256", Buffer.from(input), {
        key: key.privateKey,
        ...(alg === "ES256" ? { dsaEncoding: "ieee-p1363" as const } : {}),
      });
      return `${input}.${signature.toString("base64url")}`;
    },

    kid: (alg = "RS256") => keys[alg].kid,
    publicPem: (alg = "RS256") => keys[alg].publicKey.export({ format: "pem", type: "spki" }).toString(),

    rotate() {
      keys = newKeys();
    },

    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return issuer;
}
