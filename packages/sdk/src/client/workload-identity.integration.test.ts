import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The real server and a cluster-like issuer, as the server's own tests start them (test-only
// import: the SDK itself does not depend on the server).
import { startWorkloadKeyward, type WorkloadKeyward } from "../../../server/test-support/cluster-issuer.js";
import { nextEvent } from "../../test-support/client/events.js";
import { Keyward } from "./keyward.js";
import type { Clock } from "./options.js";

let env: WorkloadKeyward;
let dir: string;

beforeAll(async () => {
  env = await startWorkloadKeyward();
  dir = mkdtempSync(join(tmpdir(), "kw-sa-token-"));
});
afterAll(async () => {
  await env?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Keyward.connect({ workloadToken }) against the real server and a cluster issuer", () => {
  it("connects with only the projected token file, reads a credential, and renews from the rotated file", async () => {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, env.cluster.serviceAccountToken("research", "agent"));
    // Real timers; the client's notion of now can be moved ahead to reach the renewal point.
    let ahead = 0;
    const clock: Clock = {
      now: () => Date.now() + ahead,
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    const assertions: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      if (String(input).endsWith("/oauth/token")) {
        const form = new URLSearchParams(String(init?.body));
        if (form.get("assertion")) assertions.push(form.get("assertion") as string);
      }
      return fetch(input, init);
    };
    const kw = await Keyward.connect({
      url: env.kw.url,
      workloadToken: () => readFile(tokenFile, "utf8"),
      fetch: recording,
      clock,
    });
    try {
      expect(kw.get("research_openai")).toBe("sk-research-1");
      expect(assertions).toHaveLength(1);
      // The event stream runs on the same token: a rotation arrives live.
      const changed = nextEvent(kw, "change");
      await env.kw.admin("PUT", "/credentials/research_openai", { value: "sk-research-2" });
      expect(await changed).toEqual({ name: "research_openai", version: 2 });
      expect(kw.get("research_openai")).toBe("sk-research-2");

      // The cluster rotates its signing key and the kubelet writes a new token into the file.
      env.cluster.rotate();
      const rotated = env.cluster.serviceAccountToken("research", "agent", { jti: "rotated" });
      writeFileSync(tokenFile, rotated);
      ahead = 0.8 * 900_000;

      // The next request renews first: the new file's token, exchanged, then used as the actor.
      const { secret } = (await env.kw.admin("POST", "/keys", { owner: "user:bob", scopes: ["agent:*"] })).body;
      const user = (await (
        await fetch(`${env.kw.url}/v1/auth/token`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ api_key: secret, audience: "research" }),
        })
      ).json()) as { access_token: string };
      const delegated = await kw.exchange({ subjectToken: user.access_token, audience: "other" });
      expect(assertions).toEqual([expect.any(String), rotated]);
      expect(decodeJwt(delegated.accessToken)).toMatchObject({
        sub: "user:bob",
        aud: "other",
        act: { sub: "agent:research" },
      });
    } finally {
      await kw.close();
    }
  });

  it("a token file for a service account no rule names fails connect with the server's code", async () => {
    const tokenFile = join(dir, "evil");
    writeFileSync(tokenFile, env.cluster.serviceAccountToken("research", "agent-evil"));
    const err = await Keyward.connect({ url: env.kw.url, workloadToken: () => readFile(tokenFile, "utf8") }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "invalid_grant", status: 400 });
  });
});
