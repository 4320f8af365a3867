import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import type { JoseFailureCode } from "@keyward/sdk/jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import type { Db } from "../store/db.js";
import { createKeyring } from "./keyring.js";
import { createSigningKeys, privateKeyAad, type SigningKeys } from "./signing-keys.js";

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** Builds a compact JWS by hand, so tests can forge any header with a valid ES256 signature. */
function forge(
  header: Record<string, unknown>,
  payload: unknown,
  key: KeyObject,
  dsaEncoding: "ieee-p1363" | "der" = "ieee-p1363",
) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign("sha256", Buffer.from(input), { key, dsaEncoding }).toString("base64url")}`;
}

describe.each(testEngines)("signing keys security on $name", (engine) => {
  let db: Db;
  let keys: SigningKeys;
  let kid: string;
  let ourKey: KeyObject;
  const keyring = createKeyring({ active: randomBytes(32) });
  const claims = { sub: "consumer:a", aud: "agent:w", scope: "agent:w" };

  beforeAll(async () => {
    if (engine.skip) return;
    db = await engine.open();
    keys = createSigningKeys({ db, keyring, clock: frozenClock() });
    await keys.init();
    kid = keys.activeKid;
    const [row] = await db.query<{ private_enc: Buffer }>("SELECT private_enc FROM signing_keys");
    ourKey = createPrivateKey({
      key: keyring.open(row!.private_enc, privateKeyAad(kid)),
      format: "der",
      type: "pkcs8",
    });
  });
  afterAll(async () => {
    await db?.close();
  });

  /** The refusal's typed code (and, for a forbidden header, which one): never a compared message. */
  const rejects = (token: string, code: JoseFailureCode, opts?: { typ?: string; header?: string }) => {
    const result = keys.verify(token, opts?.typ === undefined ? undefined : { typ: opts.typ });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(code);
      if (opts?.header !== undefined) expect(result.header).toBe(opts.header);
    }
  };

  describe.skipIf(engine.skip)("", () => {
    it("control: a hand-built token with our key verifies", () => {
      expect(keys.verify(forge({ alg: "ES256", typ: "at+jwt", kid }, claims, ourKey), { typ: "at+jwt" }).ok).toBe(true);
    });

    it("rejects alg none, with or without a signature", () => {
      rejects(`${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(claims)}.`, "unsupported_alg");
      rejects(`${b64({ alg: "none", kid })}.${b64(claims)}`, "malformed");
      rejects(`${b64({ alg: "None", kid })}.${b64(claims)}.${b64("x")}`, "unsupported_alg");
    });

    it("rejects HS256 keyed with the public key's bytes (algorithm confusion)", () => {
      const jwk = keys.jwks().keys[0]!;
      const publicKey = createPublicKey({ key: jwk, format: "jwk" });
      const secrets = [
        JSON.stringify(jwk),
        publicKey.export({ format: "pem", type: "spki" }),
        publicKey.export({ format: "der", type: "spki" }),
      ];
      for (const secret of secrets) {
        const input = `${b64({ alg: "HS256", typ: "at+jwt", kid })}.${b64(claims)}`;
        const mac = createHmac("sha256", secret).update(input).digest("base64url");
        rejects(`${input}.${mac}`, "unsupported_alg");
      }
    });

    it("rejects every other algorithm name, even with our valid ES256 signature", () => {
      for (const alg of ["ES384", "ES512", "RS256", "PS256", "EdDSA", "es256", "ES256 ", "", null, ["ES256"]]) {
        rejects(forge({ alg, typ: "at+jwt", kid }, claims, ourKey), "unsupported_alg");
      }
      rejects(forge({ typ: "at+jwt", kid }, claims, ourKey), "unsupported_alg");
    });

    it("rejects unknown kids and kids that are not plain strings", () => {
      for (const bad of ["../../etc/passwd", "unknown", "__proto__", "constructor", `${kid} `, kid.toLowerCase()]) {
        if (bad === kid) continue;
        rejects(forge({ alg: "ES256", kid: bad }, claims, ourKey), "unknown_kid");
      }
      for (const bad of [undefined, "", 1, null, [kid], { kid }]) {
        rejects(forge({ alg: "ES256", kid: bad }, claims, ourKey), "missing_kid");
      }
    });

    it("never follows jku, x5u, x5c, jwk or crit, even on an otherwise valid token", () => {
      const attacker = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const attackerJwk = attacker.publicKey.export({ format: "jwk" });
      const extra: Array<[string, unknown]> = [
        ["jku", "https://attacker.example/jwks.json"],
        ["x5u", "https://attacker.example/cert.pem"],
        ["x5c", ["MIIB"]],
        ["jwk", attackerJwk],
        ["crit", ["exp"]],
        ["b64", false],
      ];
      for (const [name, value] of extra) {
        rejects(forge({ alg: "ES256", typ: "at+jwt", kid, [name]: value }, claims, ourKey), "forbidden_header", {
          header: name,
        });
      }
      // The classic embedded-key attack: signed with the attacker's key, which it carries along.
      rejects(forge({ alg: "ES256", kid, jwk: attackerJwk }, claims, attacker.privateKey), "forbidden_header", {
        header: "jwk",
      });
      rejects(forge({ alg: "ES256", kid }, claims, attacker.privateKey), "bad_signature");
    });

    it("rejects a tampered payload or header", () => {
      const [h, , s] = keys.sign(claims).split(".");
      rejects(`${h}.${b64({ ...claims, scope: "agent:*" })}.${s}`, "bad_signature");
      const [, p, s2] = keys.sign(claims).split(".");
      rejects(`${b64({ alg: "ES256", typ: "at+jwt", kid, x: 1 })}.${p}.${s2}`, "bad_signature");
    });

    it("enforces typ when asked", () => {
      const token = keys.sign(claims);
      expect(keys.verify(token).ok).toBe(true);
      expect(keys.verify(token, { typ: "application/at+jwt" }).ok).toBe(true);
      rejects(token, "wrong_type", { typ: "JWT" });
      rejects(keys.sign(claims, "JWT"), "wrong_type", { typ: "at+jwt" });
      rejects(forge({ alg: "ES256", kid }, claims, ourKey), "wrong_type", { typ: "at+jwt" });
    });

    it("rejects DER-encoded, zero and wrong-length signatures", () => {
      rejects(forge({ alg: "ES256", kid }, claims, ourKey, "der"), "malformed");
      const [h, p] = keys.sign(claims).split(".");
      rejects(`${h}.${p}.${Buffer.alloc(64).toString("base64url")}`, "bad_signature"); // CVE-2022-21449
      rejects(`${h}.${p}.${Buffer.alloc(63, 1).toString("base64url")}`, "malformed");
    });

    it("answers malformed input with ok:false and never throws", () => {
      const valid = keys.sign(claims);
      const [h, p, s] = valid.split(".") as [string, string, string];
      const cases: unknown[] = [
        "",
        "a.b",
        `${valid}.x`,
        `${h}=.${p}.${s}`,
        `${h}.${p}.${s}=`,
        `${h}.${p}+.${s}`,
        ` ${valid}`,
        `${b64("[]")}.${p}.${s}`,
        `${b64("null")}.${p}.${s}`,
        `${b64("not json")}.${p}.${s}`,
        `${h}.${b64("[1]")}.${s}`,
        `${h}.${Buffer.from([0xff, 0xfe]).toString("base64url")}.${s}`,
        `${h}.${"A".repeat(20_000)}.${s}`,
        undefined,
        null,
        42,
        { token: valid },
      ];
      for (const token of cases) {
        const result = keys.verify(token as string);
        expect(result.ok).toBe(false);
      }
    });

    it("rejects a payload signed correctly but not a JSON object", () => {
      rejects(forge({ alg: "ES256", kid }, [1, 2], ourKey), "malformed");
      rejects(forge({ alg: "ES256", kid }, "just text", ourKey), "malformed");
    });
  });
});
