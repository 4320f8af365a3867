import { describe, expect, it } from "vitest";
import { type ClaimRules, validateClaims } from "./claims.js";

const NOW = 1_800_000_000;
const base = { iss: "https://issuer.test", aud: ["api", "web"], exp: NOW + 60, iat: NOW - 1 };
const rules: ClaimRules = { issuer: base.iss, audience: new Set(["api"]), required: ["exp", "iat"] };

describe("validateClaims", () => {
  it("accepts valid claims and gives aud as a list", () => {
    expect(validateClaims(base, rules, NOW)).toEqual({ ok: true, value: { audience: ["api", "web"] } });
    expect(validateClaims({ ...base, aud: "api" }, rules, NOW)).toEqual({ ok: true, value: { audience: ["api"] } });
  });

  it.each([
    ["exp missing", { exp: undefined }, "exp"],
    ["exp a string", { exp: String(NOW + 60) }, "exp"],
    ["exp not finite", { exp: Number.POSITIVE_INFINITY }, "exp"],
    ["iat missing", { iat: undefined }, "iat"],
    ["nbf null", { nbf: null }, "nbf"],
    ["aud empty", { aud: [] }, "aud"],
    ["aud with a number", { aud: ["api", 5] }, "aud"],
    ["aud an object", { aud: { api: true } }, "aud"],
  ])("invalid_claim: %s", (_why, change, claim) => {
    expect(validateClaims({ ...base, ...change }, rules, NOW)).toEqual({ ok: false, code: "invalid_claim", claim });
  });

  it("wrong_issuer and wrong_audience", () => {
    expect(validateClaims({ ...base, iss: "https://issuer.test/" }, rules, NOW)).toMatchObject({
      code: "wrong_issuer",
    });
    expect(validateClaims({ ...base, iss: undefined }, rules, NOW)).toMatchObject({ code: "wrong_issuer" });
    expect(validateClaims({ ...base, aud: "web" }, rules, NOW)).toMatchObject({ code: "wrong_audience" });
    expect(validateClaims({ ...base, aud: undefined }, rules, NOW)).toMatchObject({
      code: "invalid_claim",
      claim: "aud",
    });
  });

  it("expires at exp exactly, and the tolerance moves every boundary", () => {
    const exp = { ...base, exp: NOW };
    expect(validateClaims(exp, rules, NOW - 0.001).ok).toBe(true);
    expect(validateClaims(exp, rules, NOW)).toEqual({ ok: false, code: "expired", claim: "exp" });
    expect(validateClaims(exp, { ...rules, clockToleranceS: 5 }, NOW + 4.9).ok).toBe(true);
    expect(validateClaims(exp, { ...rules, clockToleranceS: 5 }, NOW + 5)).toMatchObject({ code: "expired" });
    expect(validateClaims(exp, { ...rules, clockToleranceS: 5, expToleranceS: 0 }, NOW)).toMatchObject({
      code: "expired",
    });
  });

  it("not_yet_valid for nbf and a future iat, within the tolerance accepted", () => {
    expect(validateClaims({ ...base, nbf: NOW + 1 }, rules, NOW)).toEqual({
      ok: false,
      code: "not_yet_valid",
      claim: "nbf",
    });
    expect(validateClaims({ ...base, nbf: NOW }, rules, NOW).ok).toBe(true);
    expect(validateClaims({ ...base, nbf: NOW + 5 }, { ...rules, clockToleranceS: 5 }, NOW).ok).toBe(true);
    expect(validateClaims({ ...base, iat: NOW + 1 }, rules, NOW)).toEqual({
      ok: false,
      code: "not_yet_valid",
      claim: "iat",
    });
    expect(validateClaims({ ...base, iat: NOW + 5 }, { ...rules, clockToleranceS: 5 }, NOW).ok).toBe(true);
    expect(validateClaims({ ...base, iat: NOW + 60 }, { ...rules, rejectFutureIat: false }, NOW).ok).toBe(true);
  });

  it("checks types before times, so a malformed claim is never reported as merely expired", () => {
    expect(validateClaims({ ...base, exp: NOW - 10, nbf: "later" }, rules, NOW)).toMatchObject({
      code: "invalid_claim",
      claim: "nbf",
    });
  });

  it("without rules checks only what is present", () => {
    expect(validateClaims({}, {}, NOW).ok).toBe(true);
    expect(validateClaims({ exp: NOW - 1 }, {}, NOW)).toMatchObject({ code: "expired" });
  });
});
