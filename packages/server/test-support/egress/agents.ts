import { expect } from "vitest";
import type { TestServer } from "../server.js";

/** An agent with its own key (owner `agent:<name>`), created through the admin API. */
export async function agentWithKey(kw: TestServer, name: string): Promise<string> {
  const agent = await kw.admin("POST", "/agents", { name, upstream: "http://127.0.0.1:9" });
  expect(agent.status, JSON.stringify(agent.body)).toBe(201);
  const key = await kw.admin("POST", "/keys", { owner: `agent:${name}`, scopes: [] });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  return key.body.secret as string;
}

export async function putCredential(
  kw: TestServer,
  name: string,
  value: string,
  egress?: { base_url: string; header?: string; format?: string } | null,
): Promise<number> {
  const r = await kw.admin("PUT", `/credentials/${name}`, { value, ...(egress !== undefined ? { egress } : {}) });
  expect([200, 201], JSON.stringify(r.body)).toContain(r.status);
  return r.body.version as number;
}

export async function grant(
  kw: TestServer,
  agent: string,
  credentials: Array<{ name: string; mode: "read" | "inject" }>,
): Promise<void> {
  const r = await kw.admin("PUT", `/agents/${agent}/grants`, { credentials });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** Calls `/egress/…` on Keyward with the agent's key. */
export function egressCall(kw: TestServer, key: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${kw.url}/egress/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string> | undefined) },
    redirect: "manual",
  });
}
