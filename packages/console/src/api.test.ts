import { describe, expect, it } from "vitest";
import { Api, ApiError, UnreachableError } from "./api";

type Call = { input: string; init: RequestInit };

function api(respond: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const client = new Api(async (input, init) => {
    const call = { input, init };
    calls.push(call);
    return respond(call);
  });
  return { client, calls };
}

const session = () =>
  new Response(
    JSON.stringify({
      admin_token: { id: "adm_1", role: "operator" },
      csrf_token: "csrf-1",
      expires_at: "2026-12-01T00:00:00Z",
      idle_timeout_s: 1800,
    }),
    { status: 201 },
  );

const headers = (c: Call | undefined) => c?.init.headers as Record<string, string>;

describe("Api", () => {
  it("sends the CSRF token from sign-in on changes only, always with same-origin credentials", async () => {
    const { client, calls } = api(({ input }) =>
      input === "/admin/v1/sessions" ? session() : new Response(JSON.stringify({ items: [], next_cursor: null })),
    );
    await client.signIn("kwa_x");
    expect(client.snapshot().session).toEqual({ adminId: "adm_1", role: "operator", csrf: "csrf-1" });
    await client.get("/admin/v1/keys", { limit: 50, cursor: undefined, owner: "" });
    await client.post("/admin/v1/keys/key_1/revoke");
    expect(calls[1]?.input).toBe("/admin/v1/keys?limit=50");
    expect(headers(calls[1])["x-csrf-token"]).toBeUndefined();
    expect(headers(calls[2])["x-csrf-token"]).toBe("csrf-1");
    expect(calls.every((c) => c.init.credentials === "same-origin")).toBe(true);
  });

  it("parses the error body into an ApiError and ends the session on a 401", async () => {
    let status = 201;
    const { client } = api(() =>
      status === 201
        ? session()
        : new Response(
            JSON.stringify({ error: { code: "unauthorized", message: "session expired", request_id: "r9" } }),
            {
              status,
            },
          ),
    );
    await client.signIn("kwa_x");
    status = 401;
    const err = await client.get("/admin/v1/agents").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: "unauthorized", message: "session expired", requestId: "r9" });
    expect(client.snapshot().session).toBeNull();
  });

  it("keeps the session on a 403, and names a status whose body is not ours", async () => {
    let body = "";
    let status = 201;
    const { client } = api(() => (status === 201 ? session() : new Response(body, { status, statusText: "Teapot" })));
    await client.signIn("kwa_x");
    status = 403;
    body = JSON.stringify({ error: { code: "forbidden", message: "role viewer may not", request_id: "r1" } });
    await expect(client.post("/admin/v1/agents", {})).rejects.toMatchObject({ code: "forbidden" });
    expect(client.snapshot().session).not.toBeNull();
    status = 418;
    body = "<html>no</html>";
    await expect(client.get("/admin/v1/agents")).rejects.toMatchObject({ code: "http_418", message: "Teapot" });
  });

  it("marks the server unreachable when fetch gets no answer or a proxy says it is down, and reachable again after", async () => {
    let mode: "down" | "502" | "up" = "down";
    const { client } = api(() => {
      if (mode === "down") throw new TypeError("Failed to fetch");
      return mode === "502" ? new Response("bad gateway", { status: 502 }) : new Response("{}", { status: 200 });
    });
    await expect(client.get("/admin/v1/agents")).rejects.toBeInstanceOf(UnreachableError);
    expect(client.snapshot().reachable).toBe(false);
    mode = "up";
    await client.get("/admin/v1/agents");
    expect(client.snapshot().reachable).toBe(true);
    mode = "502";
    await expect(client.get("/admin/v1/agents")).rejects.toBeInstanceOf(ApiError);
    expect(client.snapshot().reachable).toBe(false);
  });
});
