import { describe, expect, it } from "vitest";
import { ManualClock } from "../../test-support/client/manual-clock.js";
import { KeywardError } from "../errors.js";
import { Keyward } from "./keyward.js";
import { resolveOptions } from "./options.js";
import { workloadTokenSource } from "./workload-token.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** A token endpoint that records each assertion and answers from `next`. */
function tokenEndpoint(next: (n: number) => Response) {
  const assertions: string[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    expect(String(input)).toBe("https://kw.example/base/oauth/token");
    const form = new URLSearchParams(String(init?.body));
    expect(form.get("grant_type")).toBe(JWT_BEARER);
    assertions.push(form.get("assertion") ?? "");
    return next(assertions.length);
  };
  return { assertions, fetch: fetch as typeof globalThis.fetch };
}

const granted = (n: number, expiresIn = 900) =>
  Response.json({ access_token: `at-${n}`, token_type: "Bearer", expires_in: expiresIn, scope: "" });

function source(clock: ManualClock, read: () => string | Promise<string>, fetch: typeof globalThis.fetch) {
  return workloadTokenSource({
    url: new URL("https://kw.example/base/"),
    read,
    fetch,
    clock,
    timeoutMs: 1000,
    maxBytes: 1 << 20,
  });
}

describe("workloadToken: the platform token exchanged for the agent's access token", () => {
  it("exchanges once, reuses the token until 80 % of its life, then re-reads the (rotated) file", async () => {
    const clock = new ManualClock();
    let file = "platform-1\n";
    const ep = tokenEndpoint((n) => granted(n));
    const token = source(clock, () => file, ep.fetch);
    expect(await token()).toBe("at-1");
    clock.advance(700_000);
    expect(await token()).toBe("at-1");
    expect(ep.assertions).toEqual(["platform-1"]);
    file = "platform-2\n"; // the kubelet rotated the projected token
    clock.advance(20_000); // 720 s = 80 % of 900 s
    expect(await token()).toBe("at-2");
    expect(ep.assertions).toEqual(["platform-1", "platform-2"]);
  });

  it("callers waiting at the same time share one exchange", async () => {
    const clock = new ManualClock();
    const ep = tokenEndpoint((n) => granted(n));
    const token = source(clock, () => "p", ep.fetch);
    expect(await Promise.all([token(), token(), token()])).toEqual(["at-1", "at-1", "at-1"]);
    expect(ep.assertions).toHaveLength(1);
  });

  it("while renewal fails, keeps the current token until just before it expires, then throws the server's code", async () => {
    const clock = new ManualClock();
    const ep = tokenEndpoint((n) =>
      n === 1
        ? granted(1, 100)
        : Response.json(
            { error: "invalid_grant", error_description: "the token matches no trusted workload rule" },
            { status: 400 },
          ),
    );
    const token = source(clock, () => "platform-secret-value", ep.fetch);
    expect(await token()).toBe("at-1");
    clock.advance(90_000);
    expect(await token()).toBe("at-1");
    clock.advance(6_000); // 4 s left: too close to expiry to hand out
    const err = (await token().catch((e: unknown) => e)) as KeywardError;
    expect(err).toBeInstanceOf(KeywardError);
    expect(err.code).toBe("invalid_grant");
    expect(err.status).toBe(400);
    expect(err.message).toContain("matches no trusted workload rule");
    expect(err.message).not.toContain("platform-secret-value");
  });

  it("an empty token file is refused before any request; a malformed answer is invalid_response", async () => {
    const clock = new ManualClock();
    const ep = tokenEndpoint(() => Response.json({ nope: true }));
    await expect(source(clock, () => "  \n", ep.fetch)()).rejects.toMatchObject({ code: "invalid_grant" });
    expect(ep.assertions).toHaveLength(0);
    await expect(source(clock, () => "p", ep.fetch)()).rejects.toMatchObject({ code: "invalid_response" });
  });

  it("token and workloadToken exclude each other; workloadToken must be a function", async () => {
    expect(() => resolveOptions({ url: "http://127.0.0.1:1", token: "kwk_x", workloadToken: () => "p" })).toThrow(
      TypeError,
    );
    expect(() => resolveOptions({ url: "http://127.0.0.1:1", workloadToken: "p" as never })).toThrow(/workloadToken/);
    expect(() => resolveOptions({ url: "http://127.0.0.1:1" })).toThrow(/token/);
    await expect(
      Keyward.connect({ url: "http://127.0.0.1:1", token: "kwk_x", workloadToken: () => "p" }),
    ).rejects.toThrow(/exclude each other/);
  });
});
