import { expect } from "vitest";
import type { TestServer } from "./server.js";

/** Agent `echo` in front of `upstreamUrl` and consumer `acme`; idempotent (replicas share a store). */
export async function setUpEcho(kw: TestServer, upstreamUrl: string): Promise<void> {
  expect([201, 409]).toContain((await kw.admin("POST", "/agents", { name: "echo", upstream: upstreamUrl })).status);
  expect([201, 409]).toContain((await kw.admin("POST", "/consumers", { name: "acme" })).status);
}

export async function newKey(
  kw: TestServer,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

export interface Answer {
  status: number;
  code: string | undefined;
  headers: Headers;
}

/** One gateway call; the body is read (the connection is freed) and its error code kept. */
export async function call(kw: TestServer, secret: string, path = "/agents/echo/x"): Promise<Answer> {
  const res = await fetch(`${kw.url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
  const text = await res.text();
  const code = res.status >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined;
  return { status: res.status, code, headers: res.headers };
}

/** The value of one metric line (`name{labels}`) in /metrics, or undefined when absent. */
export async function metric(kw: TestServer, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${kw.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Polls an observable condition (bounded): for state that changes in another process or socket. */
export async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Redis is connected again as Keyward sees it. */
export function redisUp(kw: TestServer): Promise<void> {
  return waitFor("keyward_limits_redis_up 1", async () => (await metric(kw, "keyward_limits_redis_up")) === 1);
}
