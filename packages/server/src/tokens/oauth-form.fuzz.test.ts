import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeywardError } from "../errors.js";
import { OAuthError } from "./oauth-errors.js";
import { parseScope, readOAuthParams } from "./oauth-form.js";

/**
 * Property tests of the OAuth request parameters (`/oauth/*`, `/v1/auth/token`): any body, form or
 * JSON, gives string parameters or the documented invalid_request, never another error.
 */
function request(body: Buffer, contentType: string | undefined): IncomingMessage {
  const req = Readable.from(body.length > 0 ? [body] : []) as unknown as IncomingMessage;
  return Object.assign(req, { headers: contentType === undefined ? {} : { "content-type": contentType } });
}

type Outcome = Map<string, string> | OAuthError;

async function parsed(body: Buffer, contentType: string | undefined): Promise<Outcome> {
  try {
    const params = await readOAuthParams(request(body, contentType));
    for (const [k, v] of params) expect([typeof k, typeof v]).toEqual(["string", "string"]);
    return params;
  } catch (err) {
    expect(err instanceof OAuthError || err instanceof KeywardError, String(err)).toBe(true);
    expect((err as OAuthError).error ?? (err as KeywardError).code).toBe("invalid_request");
    return err as OAuthError;
  }
}

const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      "application/x-www-form-urlencoded",
      "application/x-www-form-urlencoded; charset=utf-8",
      "APPLICATION/JSON",
      "application/json; charset=utf-8",
      "application/vnd.api+json",
      "application/jsonx",
      "text/plain",
      "multipart/form-data; boundary=x",
      "",
    ),
    fc.string({ maxLength: 40 }),
  ),
  { nil: undefined },
);
const formish = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom("grant_type", "client_id", "client_secret", "scope", "refresh_token"), fc.string()),
      fc.string({ unit: fc.oneof(anyUnit, fc.constantFrom("%", "%2", "%zz", "%C3", "%00", "+", "&", "=")) }),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&"));
const jsonish = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .dictionary(fc.string(), fc.oneof(fc.string(), fc.double(), fc.constant(null), fc.jsonValue()))
    .map((o) => JSON.stringify(o)),
  fc.constantFrom('{"a":"1","a":"2"}', '{"__proto__":"x"}', '{"a":1e999}', "{", "[]", "null", '"x"', "{}"),
);
const body = fc.oneof(
  formish.map((s) => Buffer.from(s)),
  jsonish.map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.string({ unit: anyUnit, maxLength: 200 }).map((s) => Buffer.from(s)),
);

describe("OAuth request parameters, fuzzed", () => {
  it("parse any body under any content type into strings, or refuse it with invalid_request", async () => {
    await fc.assert(
      fc.asyncProperty(body, contentType, async (b, type) => {
        await parsed(b, type);
      }),
      { numRuns: 700 },
    );
  });

  const wellFormed = fc.string({ unit: "binary", maxLength: 30 }).filter((s) => !s.includes("\u0000"));
  const params = fc.uniqueArray(fc.tuple(wellFormed, wellFormed), { maxLength: 6, selector: ([k]) => k });

  it("read back every form and JSON body a client encodes", async () => {
    await fc.assert(
      fc.asyncProperty(params, async (pairs) => {
        const form = await parsed(
          Buffer.from(new URLSearchParams(pairs).toString()),
          "application/x-www-form-urlencoded",
        );
        expect(form).toEqual(new Map(pairs));
        const json = JSON.stringify(Object.fromEntries(pairs));
        fc.pre(!json.includes("%00"));
        expect(await parsed(Buffer.from(json), "application/json")).toEqual(new Map(Object.entries(JSON.parse(json))));
      }),
      { numRuns: 400 },
    );
  });

  it("refuse a form parameter given twice", async () => {
    await fc.assert(
      fc.asyncProperty(params, wellFormed, wellFormed, async (pairs, name, value) => {
        const q = new URLSearchParams([...pairs, [name, value], [name, value]]);
        const r = await parsed(Buffer.from(q.toString()), "application/x-www-form-urlencoded");
        expect(r).toBeInstanceOf(OAuthError);
      }),
      { numRuns: 200 },
    );
  });

  it("split any scope into distinct RFC 6749 scope tokens, or refuse it with invalid_scope", () => {
    fc.assert(
      fc.property(
        fc.option(fc.string({ unit: fc.oneof(anyUnit, fc.constantFrom(" ", "a", ":", "*")) }), { nil: undefined }),
        (scope) => {
          let scopes: string[] | undefined;
          try {
            scopes = parseScope(scope);
          } catch (err) {
            expect(err).toBeInstanceOf(OAuthError);
            expect((err as OAuthError).error).toBe("invalid_scope");
            return;
          }
          if (scope === undefined) {
            expect(scopes).toBeUndefined();
            return;
          }
          expect(new Set(scopes).size).toBe(scopes?.length);
          for (const s of scopes ?? []) expect(s).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]+$/);
          expect(new Set(scopes)).toEqual(new Set(scope.split(" ").filter(Boolean)));
        },
      ),
      { numRuns: 500 },
    );
  });
});
