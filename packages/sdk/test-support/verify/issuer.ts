import { KeyObject, randomUUID, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/**
 * A stand-in for Keyward's token side in tests: a node:http server publishing a JWKS of
 * jose-generated keys, counting how often it is fetched, and signing tokens with those keys.
 */
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

export interface TestKey {
  kid: string;
  alg: "ES256" | "EdDSA";
  privateKey: PrivateKey;
  publicJwk: JWK;
}

export interface TestIssuer {
  /** The issuer URL (`iss`), also the server's base URL. */
  url: string;
  /** How many JWKS requests the server has answered. */
  readonly fetches: number;
  /** The keys currently published; `keys[0]` signs by default. */
  keys: TestKey[];
  /** Makes a new key and publishes it first (a rotation); the old keys stay published. */
  rotate(alg?: "ES256" | "EdDSA"): Promise<TestKey>;
  /** The JWKS answers this status with an error body until set back to 200. */
  failWith(status: number): void;
  /** Holds JWKS responses until the returned function is called (to observe concurrent misses). */
  hold(): () => void;
  /** A valid access token; claims and header fields override the defaults, `undefined` removes one. */
  token(claims?: Record<string, unknown>, header?: Record<string, unknown>, key?: TestKey): Promise<string>;
  close(): Promise<void>;
}

export const AUDIENCE = "research";

export async function newKey(alg: "ES256" | "EdDSA" = "ES256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: "sig" } };
}

export async function startIssuer(): Promise<TestIssuer> {
  let fetches = 0;
  let status = 200;
  let gate: Promise<void> | undefined;
  const keys: TestKey[] = [await newKey()];
  const server: Server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    const answer = () => {
      if (status !== 200) {
        res.writeHead(status, { "content-type": "application/json" }).end('{"error":"down"}');
        return;
      }
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) }));
    };
    if (gate) gate.then(answer);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuer: TestIssuer = {
    url,
    get fetches() {
      return fetches;
    },
    keys,
    async rotate(alg = "ES256") {
      const key = await newKey(alg);
      issuer.keys = [key, ...issuer.keys];
      return key;
    },
    failWith(s) {
      status = s;
    },
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    async token(claims = {}, header = {}, key = issuer.keys[0]!) {
      const now = Math.floor(Date.now() / 1000);
      const payload = withoutUndefined({
        iss: url,
        sub: "consumer:billing",
        aud: AUDIENCE,
        iat: now,
        exp: now + 300,
        jti: randomUUID(),
        client_id: "key_123",
        scope: "agent:research read:docs",
        ...claims,
      });
      const protectedHeader = withoutUndefined({ alg: key.alg, typ: "at+jwt", kid: key.kid, ...header });
      return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return issuer;
}

/**
 * A compact JWS built by hand, for tokens jose refuses to produce (`crit` it does not know,
 * `alg: none`, odd headers). ES256 over node:crypto, or `signature` given verbatim.
 */
export function craftToken(
  header: Record<string, unknown>,
  payload: Record<string, unknown> | string,
  signWith: { key: TestKey } | { signature: string },
): string {
  const h = Buffer.from(JSON.stringify(header)).toString("base64url");
  const p = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload)).toString("base64url");
  if ("signature" in signWith) return `${h}.${p}.${signWith.signature}`;
  const signature = sign("sha256", Buffer.from(`${h}.${p}`), {
    key: KeyObject.from(signWith.key.privateKey),
    dsaEncoding: "ieee-p1363",
  });
  return `${h}.${p}.${signature.toString("base64url")}`;
}

/** The claims of a valid token at `nowS`, for hand-built tokens. */
export function validClaims(issuer: string, nowS = Math.floor(Date.now() / 1000)): Record<string, unknown> {
  return {
    iss: issuer,
    sub: "consumer:billing",
    aud: AUDIENCE,
    iat: nowS,
    exp: nowS + 300,
    jti: randomUUID(),
    client_id: "key_123",
    scope: "agent:research",
  };
}

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
