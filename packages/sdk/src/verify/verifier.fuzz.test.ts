import { KeyObject, randomBytes, sign } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, newKey, type TestKey, validClaims } from "../../test-support/verify/issuer.js";
import { TokenVerificationError } from "./errors.js";
import { type Verifier, verifier } from "./verifier.js";

/**
 * Property tests of the SDK verifier: whatever token arrives, `verify` rejects with a
 * TokenVerificationError (a denial), never another error, never a success, unless the token is an
 * untouched one the issuer signed. The arbitraries mirror the server's (packages/server/src/
 * test-support/fuzz/jwt.ts) rather than import them: the SDK does not depend on the server.
 */
const ISSUER = "https://issuer.fuzz.test";
let key: TestKey;
let privateKey: KeyObject;
let v: Verifier;
let header: { alg: string; typ: string; kid: string };

beforeAll(async () => {
  key = await newKey();
  privateKey = KeyObject.from(key.privateKey);
  header = { alg: "ES256", typ: "at+jwt", kid: key.kid };
  const jwks = JSON.stringify({ keys: [key.publicJwk] });
  v = verifier({ issuer: ISSUER, audience: AUDIENCE, fetch: async () => new Response(jwks, { status: 200 }) });
  await v.refresh();
});

const b64u = (x: string | Buffer) => (typeof x === "string" ? Buffer.from(x, "utf8") : x).toString("base64url");
function compact(h: string | Buffer, p: string | Buffer): string {
  const input = `${b64u(h)}.${b64u(p)}`;
  const sig = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${b64u(sig)}`;
}
const claims = () => validClaims(ISSUER);
const validToken = () => compact(JSON.stringify(header), JSON.stringify(claims()));

async function expectRefused(token: unknown): Promise<void> {
  const outcome = await v.verify(token as string).then(
    () => "accepted",
    (e: unknown) => e,
  );
  expect(outcome, "a token the verifier must refuse was accepted").toBeInstanceOf(TokenVerificationError);
  const e = outcome as TokenVerificationError;
  expect(["invalid_token", "token_expired"]).toContain(e.code);
  if (typeof token === "string") {
    for (const part of token.split(".").filter((p) => p.length >= 8)) expect(e.message).not.toContain(part);
  }
}

const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const segment = (maxLength = 120) => fc.string({ unit: fc.constantFrom(...B64U), maxLength });
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const notObject = fc
  .jsonValue()
  .filter((x) => typeof x !== "object" || x === null || Array.isArray(x))
  .map((x) => JSON.stringify(x));

const junk = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: anyUnit, maxLength: 200 }),
  fc.tuple(segment(), segment(), segment()).map((s) => s.join(".")),
  fc.array(fc.oneof(segment(40), fc.string({ maxLength: 20 })), { maxLength: 6 }).map((s) => s.join(".")),
  fc
    .tuple(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 80 }))
    .map(([h, p, s]) => `${b64u(JSON.stringify(h) ?? "")}.${b64u(JSON.stringify(p) ?? "")}.${b64u(Buffer.from(s))}`),
  fc.constantFrom("", ".", "..", "a.b.c", "kwk_a.b.c", "kwr_x", "Bearer a.b.c"),
);

function hostileHeader(): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    fc
      .constantFrom<unknown>("none", "None", "NONE", "HS256", "RS256", "PS256", "ES384", "EdDSA", "es256", "", null, 1)
      .map((alg) => ({ ...header, alg })),
    fc
      .tuple(fc.constantFrom("jku", "jwk", "x5u", "x5c", "crit"), fc.jsonValue())
      .map(([name, value]) => ({ ...header, [name]: value })),
    fc.constantFrom<unknown>("JWT", "jwt", "at+jwt2", "", "dpop+jwt", 1, null).map((typ) => ({ ...header, typ })),
    fc.constantFrom<unknown>(undefined, null, 1, "", "unknown-kid").map((kid) => {
      const { kid: _, ...rest } = header;
      return kid === undefined ? rest : { ...rest, kid };
    }),
  );
}

function hostileHeaderText(): fc.Arbitrary<string> {
  const base = JSON.stringify(header).slice(0, -1);
  return fc.oneof(
    fc.constantFrom(
      `${base},"alg":"none"}`,
      `${base},"alg":"HS256"}`,
      `${base},"typ":"JWT"}`,
      `${base},"kid":7}`,
      `${base},"jku":"https://evil.example/jwks.json"}`,
      `${base},"crit":["exp"]}`,
      `[${JSON.stringify(header)}]`,
      `${JSON.stringify(header)}x`,
      "",
    ),
    notObject,
  );
}

/** The same bytes to a lenient decoder, but not the canonical base64url of them. */
function nonCanonicalTail(s: string): string {
  const unused = s.length % 4 === 2 ? 4 : s.length % 4 === 3 ? 2 : 0;
  const last = s.at(-1);
  if (unused === 0 || last === undefined) return `${s}A`;
  return s.slice(0, -1) + B64U[B64U.indexOf(last) ^ ((1 << unused) - 1)];
}

function mutated(token: string): fc.Arbitrary<string> {
  const parts = token.split(".");
  const n = token.length;
  const inSegment = (f: (s: string) => string) =>
    fc.nat({ max: 2 }).map((i) => parts.map((s, j) => (i === j ? f(s) : s)).join("."));
  return fc
    .oneof(
      fc
        .tuple(fc.nat({ max: n - 1 }), fc.oneof(fc.constantFrom(...B64U, ".", "=", "+", "/"), anyUnit))
        .map(([at, c]) => token.slice(0, at) + c + token.slice(at + 1)),
      fc.nat({ max: n - 1 }).map((at) => token.slice(0, at) + token.slice(at + 1)),
      fc
        .tuple(fc.nat({ max: n }), fc.oneof(fc.constantFrom(...B64U, ".", "=", " "), anyUnit))
        .map(([at, c]) => token.slice(0, at) + c + token.slice(at)),
      fc.nat({ max: n - 1 }).map((keep) => token.slice(0, keep)),
      fc.constantFrom("=", "==", " ", "\n").chain((pad) => inSegment((s) => s + pad)),
      inSegment((s) => (/[-_]/.test(s) ? s.replaceAll("-", "+").replaceAll("_", "/") : `${s}+`)),
      inSegment(nonCanonicalTail),
      fc.constantFrom(`${token}.`, `.${token}`, [parts[1], parts[0], parts[2]].join("."), `${parts[0]}.${parts[1]}`),
    )
    .filter((t) => t !== token);
}

describe("SDK verifier, fuzzed", () => {
  it("accepts the untouched token (the control for the properties below)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constant(null), async () => {
        const c = claims();
        const token = await v.verify(compact(JSON.stringify(header), JSON.stringify(c)));
        expect(token.claims.jti).toBe(c.jti);
      }),
      { numRuns: 30 },
    );
  });

  it("refuses arbitrary strings, JWS-shaped junk and non-strings", async () => {
    await fc.assert(fc.asyncProperty(junk, expectRefused), { numRuns: 400 });
    await fc.assert(fc.asyncProperty(fc.anything(), expectRefused), { numRuns: 100 });
  });

  it("refuses any single change to a valid token, in any segment", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constant(null).chain(() => mutated(validToken())),
        expectRefused,
      ),
      { numRuns: 400 },
    );
  });

  it("refuses alg none/HS256/others, jku/jwk/x5u/x5c/crit, a wrong typ or kid, even validly signed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(hostileHeader), async (h) => {
        await expectRefused(compact(JSON.stringify(h), JSON.stringify(claims())));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses non-object or duplicate-hostile headers and non-object payloads, even validly signed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(hostileHeaderText), async (text) => {
        await expectRefused(compact(text, JSON.stringify(claims())));
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(notObject, fc.constantFrom("", "{", "[{}]")), async (text) => {
        await expectRefused(compact(JSON.stringify(header), text));
      }),
      { numRuns: 100 },
    );
  });

  it("refuses a valid header and payload with any other signature", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ maxLength: 140 })),
        async (sig) => {
          const [h, p] = validToken().split(".");
          await expectRefused(`${h}.${p}.${b64u(Buffer.from(sig))}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses huge segments, even validly signed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 16 * 1024, max: 256 * 1024 }), fc.boolean(), async (size, inHeader) => {
        const pad = randomBytes(Math.ceil(size / 2))
          .toString("hex")
          .slice(0, size);
        await expectRefused(
          inHeader
            ? compact(JSON.stringify({ ...header, pad }), JSON.stringify(claims()))
            : compact(JSON.stringify(header), JSON.stringify({ ...claims(), pad })),
        );
      }),
      { numRuns: 30 },
    );
  });

  it("answers any Authorization header with a denial, never another error", async () => {
    const value = fc.oneof(
      fc.string({ unit: anyUnit, maxLength: 100 }),
      junk.map((t) => `Bearer ${t}`),
      fc.constant(null).map(() => `Bearer ${validToken()} x`),
      fc.constantFrom("", " ", "Bearer", "Bearer ", "Basic abc", "bearer\t", "Bearer  \t "),
    );
    await fc.assert(
      fc.asyncProperty(value, async (auth) => {
        const outcome = await v.verifyHeader(auth).then(
          () => "accepted",
          (e: unknown) => e,
        );
        expect(outcome).toBeInstanceOf(TokenVerificationError);
      }),
      { numRuns: 300 },
    );
  });
});
