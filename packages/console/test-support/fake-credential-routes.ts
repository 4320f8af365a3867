import type { CredentialDetail, Grants } from "../src/types";
import type { Body, FakeState } from "./fake-admin-api";
import { error, json, NOW } from "./fixtures";

/**
 * Credentials, agents' details and grants for the fake /admin/v1. Like the server, it never
 * returns a value or client secret, and refuses an egress header that cannot carry a credential
 * (a check the console leaves to the server, so the tests see a server 400 shown as such).
 */
export function fakeCredentialRoutes(state: FakeState) {
  const put = (name: string, body: Body): Response => {
    const egress = body.egress as { base_url: string; header?: string; format?: string } | null | undefined;
    if (egress?.header?.toLowerCase() === "host") {
      return error(400, "invalid_request", "egress.header: Host cannot carry a credential");
    }
    const existing = state.credentials.find((c) => c.name === name);
    const version = (existing?.version ?? 0) + 1;
    const provider =
      body.type === "oauth2_client_credentials"
        ? {
            token_url: String(body.token_url),
            client_id: String(body.client_id),
            scope: (body.scope as string | undefined) ?? null,
          }
        : null;
    const header = egress?.header ?? "Authorization";
    const next: CredentialDetail = {
      name,
      type: provider ? "oauth2_client_credentials" : "static",
      version,
      status: "ok",
      status_message: null,
      updated_at: NOW,
      egress:
        egress === undefined
          ? (existing?.egress ?? null)
          : egress && {
              base_url: egress.base_url,
              header,
              format: egress.format ?? (header === "Authorization" ? "Bearer {value}" : "{value}"),
            },
      provider,
      versions: [
        { version, source: "admin", rolled_back_from: null, created_at: NOW, created_by: "admin:adm_owner" },
        ...(existing?.versions ?? []),
      ],
    };
    state.credentials = [...state.credentials.filter((c) => c.name !== name), next];
    return json(existing ? 200 : 201, next);
  };

  return (method: string, path: string, body: Body): Response | undefined => {
    if (method === "GET" && path === "/admin/v1/credentials") {
      return json(200, { items: state.credentials, next_cursor: null });
    }
    const cred = /^\/admin\/v1\/credentials\/([^/]+)(\/rollback)?$/.exec(path);
    if (cred) {
      const name = decodeURIComponent(cred[1] ?? "");
      if (method === "PUT" && !cred[2]) return put(name, body);
      const c = state.credentials.find((x) => x.name === name);
      if (!c) return error(404, "not_found", `credential ${name} not found`);
      if (method === "GET" && !cred[2]) return json(200, c);
      if (method === "POST" && cred[2]) {
        const version = (c.version ?? 0) + 1;
        c.versions.unshift({
          version,
          source: "rollback",
          rolled_back_from: Number(body.version),
          created_at: NOW,
          created_by: "admin:adm_owner",
        });
        c.version = version;
        return json(200, c);
      }
    }
    const agent = /^\/admin\/v1\/agents\/([^/]+)(\/grants)?$/.exec(path);
    if (agent) {
      const name = decodeURIComponent(agent[1] ?? "");
      const a = state.agents.find((x) => x.name === name);
      if (!a) return error(404, "not_found", `agent ${name} not found`);
      if (method === "GET" && !agent[2]) return json(200, a);
      const empty: Grants = { agent: name, credentials: [], user_credentials: [], may_call: [] };
      if (method === "GET") return json(200, state.grants.find((g) => g.agent === name) ?? empty);
      if (method === "PUT") {
        const g: Grants = {
          agent: name,
          credentials: body.credentials as Grants["credentials"],
          user_credentials: (body.user_credentials as string[] | undefined) ?? [],
          may_call: (body.may_call as string[] | undefined) ?? [],
        };
        state.grants = [...state.grants.filter((x) => x.agent !== name), g];
        return json(200, g);
      }
    }
    return undefined;
  };
}
