import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { presentedClient } from "./client-auth.js";
import { OAuthError } from "./oauth-errors.js";

/**
 * Property tests of client authentication at `/oauth/*` (RFC 6749 §2.3.1): any Authorization header
 * with any body parameters gives a client, no client, or the documented OAuthError
 * (invalid_request / invalid_client), never another error.
 */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const wellFormed = fc.string({ unit: "binary", maxLength: 40 });
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");
/** `application/x-www-form-urlencoded` as RFC 6749 §2.3.1 asks for the Basic id and secret. */
const formEncode = (s: string) => encodeURIComponent(s).replaceAll("%20", "+");

const authorization = fc.option(
  fc.oneof(
    fc.string({ unit: anyUnit, maxLength: 80 }),
    fc
      .tuple(fc.constantFrom("Basic ", "basic\t", "BASIC  ", "Basic"), fc.string({ unit: anyUnit, maxLength: 60 }))
      .map((p) => p.join("")),
    fc.uint8Array({ maxLength: 60 }).map((b) => `Basic ${b64(b)}`),
    fc
      .tuple(fc.string({ unit: fc.oneof(anyUnit, fc.constantFrom("%", "%zz", "%E0%A4", "+", ":")) }), fc.string())
      .map(([id, secret]) => `Basic ${b64(`${id}:${secret}`)}`),
    fc.string({ maxLength: 40 }).map((t) => `Bearer ${t}`),
    fc.constantFrom("", " ", "Basic ", "Basic =", "Basic ====", "Digest x", "Bearer"),
  ),
  { nil: undefined },
);
const bodyParams = fc
  .record(
    { client_id: fc.oneof(wellFormed, fc.constant("")), client_secret: fc.oneof(wellFormed, fc.constant("")) },
    { requiredKeys: [] },
  )
  .map((o) => new Map(Object.entries(o)));

describe("OAuth client authentication, fuzzed", () => {
  it("gives a client, no client, or invalid_request/invalid_client for any header and body", () => {
    fc.assert(
      fc.property(authorization, bodyParams, (auth, params) => {
        try {
          const client = presentedClient(auth === undefined ? {} : { authorization: auth }, params);
          if (client === undefined) return;
          expect([typeof client.id, typeof client.secret]).toEqual(["string", "string"]);
          if (!client.basic) expect(client.secret).toBe(params.get("client_secret"));
        } catch (err) {
          expect(err).toBeInstanceOf(OAuthError);
          expect(["invalid_request", "invalid_client"]).toContain((err as OAuthError).error);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("reads back any key id and secret sent with HTTP Basic", () => {
    fc.assert(
      fc.property(wellFormed, wellFormed, fc.constantFrom("Basic ", "basic ", "BASIC\t"), (id, secret, scheme) => {
        const client = presentedClient(
          { authorization: `${scheme}${b64(`${formEncode(id)}:${formEncode(secret)}`)}` },
          new Map(),
        );
        expect(client).toEqual({ id, secret, basic: true });
      }),
      { numRuns: 400 },
    );
  });

  it("reads back client_id and client_secret sent in the body, and refuses both methods at once", () => {
    fc.assert(
      fc.property(
        wellFormed.filter((s) => s !== ""),
        wellFormed,
        (id, secret) => {
          const params = new Map([
            ["client_id", id],
            ["client_secret", secret],
          ]);
          expect(presentedClient({}, params)).toEqual({ id, secret, basic: false });
          const both = () => presentedClient({ authorization: `Basic ${b64(`${formEncode(id)}:x`)}` }, params);
          expect(both).toThrow(OAuthError);
        },
      ),
      { numRuns: 300 },
    );
  });
});
