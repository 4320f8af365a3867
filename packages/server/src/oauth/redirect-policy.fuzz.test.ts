import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "../tokens/trusted-issuers-config.js";
import { redirectUriProblem, redirectUriRegistered } from "./redirect-policy.js";

/**
 * Property tests of the registration policy for redirect URIs: any string is accepted or refused
 * with a reason, never a throw; whatever is accepted is http(s) on loopback or https on an
 * allowed host, without a fragment, user info, whitespace or control characters. (The
 * authorization endpoint then compares the string as registered, exactly.)
 */
const HOSTS = new Set(["app.example.com"]);
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const piece = fc.oneof(
  fc.constantFrom(
    "http://",
    "https://",
    "javascript:",
    "data:",
    "HTTP://",
    "127.0.0.1",
    "127.1",
    "[::1]",
    "localhost",
    "app.example.com",
    "evil.example",
    "@",
    ":",
    "#",
    "?",
    "/",
    "\\",
    "%2e",
    "%00",
    "user:pw@",
    ":8443",
    " ",
    "\t",
    "\u3002",
    ".",
  ),
  fc.string({ unit: anyUnit, maxLength: 6 }),
);
const candidate = fc.array(piece, { maxLength: 10 }).map((p) => p.join(""));

describe("redirectUriProblem", () => {
  it("accepts only loopback http(s) or https on an allowed host, never throws", () => {
    fc.assert(
      fc.property(candidate, (uri) => {
        const problem = redirectUriProblem(uri, HOSTS);
        if (problem !== undefined) {
          expect(typeof problem).toBe("string");
          return;
        }
        const url = new URL(uri);
        expect(uri.includes("#")).toBe(false);
        expect(url.username + url.password).toBe("");
        expect(/[\s\p{Cc}]/u.test(uri)).toBe(false);
        if (isLoopbackHost(url.hostname)) expect(["http:", "https:"]).toContain(url.protocol);
        else {
          expect(url.protocol).toBe("https:");
          expect(HOSTS.has(url.hostname)).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ["http://127.0.0.1:53682/callback", undefined],
    ["http://localhost/cb", undefined],
    ["https://app.example.com/oauth/cb?x=1", undefined],
    ["javascript://app.example.com/%0aalert(1)", "a redirect URI must be http(s)"],
    ["https://app.example.com@evil.example/cb", "a redirect URI must not carry user info"],
    ["https://evil.example\\@app.example.com/cb", "the host evil.example is not an allowed redirect host"],
    ["http://127.0.0.1.evil.example/cb", "plain http is allowed only on loopback (127.0.0.1, [::1], localhost)"],
  ])("%s", (uri, expected) => {
    expect(redirectUriProblem(uri, HOSTS)).toBe(expected);
  });

  it("a registered URI matches itself, and another port only for a loopback IP literal with the same path and query", () => {
    const registered = ["http://127.0.0.1:5000/cb", "https://app.example.com/cb"];
    fc.assert(
      fc.property(candidate, (given) => {
        if (!redirectUriRegistered(registered, given)) return;
        if (registered.includes(given)) return;
        const u = new URL(given);
        expect(u.protocol).toBe("http:");
        expect(u.hostname).toBe("127.0.0.1");
        expect(`${u.pathname}${u.search}`).toBe("/cb");
      }),
      { numRuns: 3000 },
    );
    expect(redirectUriRegistered(registered, "http://127.0.0.1:6000/cb")).toBe(true);
    expect(redirectUriRegistered(registered, "http://127.0.0.1/cb")).toBe(true);
    expect(redirectUriRegistered(registered, "https://app.example.com:444/cb")).toBe(false);
    expect(redirectUriRegistered(registered, "http://user@127.0.0.1:6000/cb")).toBe(false);
  });
});
