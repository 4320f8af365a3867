import { describe, expect, it } from "vitest";
import { checkForwardedPath, MAX_DECODES, PATH_REFUSAL_MESSAGES, type PathRefusal } from "./path-safety.js";

describe("checkForwardedPath: accepted", () => {
  it.each([
    "",
    "/",
    "/v1/chat/completions",
    "/users/@me",
    "/@scope/pkg",
    "/a:b/c;v=1/d,e+f!$~'()*=",
    "/files/report.pdf",
    "/a.b..c/...x/.hidden/x.",
    "/x%20y",
    "/projects/group%2Fproject/files",
    "/100%25",
    "/%2541", // %41 after one decoding, "A" after two
    "/%E2%9C%93", // ✓ as UTF-8
    "/caf%C3%A9",
    "/trailing/",
    "/a;x/b",
  ])("%s", (path) => {
    expect(checkForwardedPath(path)).toEqual({ ok: true });
  });

  it("answers an ordinary path with the same frozen result: nothing is allocated on the hot path", () => {
    const a = checkForwardedPath("/v1/items/42");
    expect(a).toBe(checkForwardedPath("/users/@me/x.json"));
    expect(Object.isFrozen(a)).toBe(true);
  });
});

const refused: Array<[string, PathRefusal]> = [
  ["v1/x", "not_rooted"],
  ["/x y", "invalid_character"],
  ["/x#frag", "invalid_character"],
  ["/caf\u00e9", "invalid_character"],
  ["/\uff0e\uff0e/x", "invalid_character"], // raw fullwidth dots
  ["/%", "bad_escape"],
  ["/%2", "bad_escape"],
  ["/%zz", "bad_escape"],
  ["/%u002e%u002e/x", "bad_escape"],
  ["/%25u002e%25u002e/x", "bad_escape"], // %u002e once decoded: IIS would read a dot
  ["/..", "dot_segment"],
  ["/../admin", "dot_segment"],
  ["/a/../../admin", "dot_segment"],
  ["/.", "dot_segment"],
  ["/./x", "dot_segment"],
  ["/..;/admin", "dot_segment"],
  ["/..;jsessionid=1/admin", "dot_segment"],
  ["/..%20/admin", "dot_segment"],
  ["/..%3fx/admin", "dot_segment"],
  ["/..%23x", "dot_segment"],
  ["/.;/x", "dot_segment"],
  ["/%2e%2e/admin", "dot_segment"],
  ["/%2E%2e/admin", "dot_segment"],
  ["/.%2e/admin", "dot_segment"],
  ["/%2e/x", "dot_segment"],
  ["/..%3b/admin", "dot_segment"],
  ["/..%2fadmin", "dot_segment"],
  ["/a%2f..%2f..%2fadmin", "dot_segment"],
  ["/%252e%252e/admin", "dot_segment"],
  ["/%25252e%25252e/admin", "dot_segment"],
  ["/%2525252e%2525252e/admin", "dot_segment"], // 4 layers
  ["/%252E%252e/admin", "dot_segment"], // mixed-case hex
  ["/%ef%bc%8e%ef%bc%8e/x", "unicode_path_syntax"], // fullwidth dots, NFKC "."
  ["/%e2%80%a5/x", "unicode_path_syntax"], // two dot leader, NFKC ".."
  ["/a%ef%bc%8f..%ef%bc%8fb", "unicode_path_syntax"], // fullwidth solidus
  ["/%ef%bc%bc", "unicode_path_syntax"], // fullwidth reverse solidus
  ["/%ef%bc%85%ef%bc%92%ef%bd%85", "unicode_path_syntax"], // fullwidth "%2e"
  ["/a\\..\\admin", "backslash"],
  ["/%5c..%5cadmin", "backslash"],
  ["/%5C", "backslash"],
  ["/%255c", "backslash"],
  ["//evil.example/x", "empty_segment"],
  ["/a//b", "empty_segment"],
  ["/%2f%2fevil.example/x", "empty_segment"],
  ["/%2f", "empty_segment"],
  ["/x%0d%0aHost:%20evil", "control_character"],
  ["/x%00", "control_character"],
  ["/x%09y", "control_character"],
  ["/x%7f", "control_character"],
  ["/x%250a", "control_character"],
  ["/x\ty", "control_character"],
  ["/x%c2%85", "control_character"], // NEL, a C1 control
  ["/%c0%ae%c0%ae/x", "invalid_utf8"], // overlong "."
  ["/%C0%AE", "invalid_utf8"],
  ["/%c0%af", "invalid_utf8"], // overlong "/"
  ["/%e0%80%ae%e0%80%ae/x", "invalid_utf8"], // 3-byte overlong "."
  ["/%f0%80%80%ae", "invalid_utf8"], // 4-byte overlong "."
  ["/%25c0%25ae", "invalid_utf8"],
  ["/%ed%a0%80", "invalid_utf8"], // a surrogate
  ["/%ff", "invalid_utf8"],
  ["/%e2%9c", "invalid_utf8"], // truncated
  ["/%252525252e", "too_deeply_encoded"], // still %2e after 4 decodings
];

describe("checkForwardedPath: refused", () => {
  it.each(refused)("%s: %s", (path, reason) => {
    expect(checkForwardedPath(path)).toEqual({ ok: false, reason });
  });

  it("names every reason in the tests above, and each has a message", () => {
    const named = new Set(refused.map(([, reason]) => reason));
    expect([...named].sort()).toEqual(Object.keys(PATH_REFUSAL_MESSAGES).sort());
  });

  it("checks exactly MAX_DECODES layers of encoding", () => {
    expect(MAX_DECODES).toBe(4);
    const dot = (layers: number) => `/${"%".concat("25".repeat(layers - 1), "2e")}/x`;
    expect(checkForwardedPath(dot(4))).toEqual({ ok: false, reason: "dot_segment" });
    expect(checkForwardedPath(dot(5))).toEqual({ ok: false, reason: "too_deeply_encoded" });
    expect(checkForwardedPath("/a%25252541")).toEqual({ ok: true }); // "A" after 4 decodings
    expect(checkForwardedPath("/a%2525252541")).toEqual({ ok: false, reason: "too_deeply_encoded" });
  });
});
