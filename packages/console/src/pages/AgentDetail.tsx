import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { Agent, Grants } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { GrantsForm } from "./GrantsForm";

/** An agent and what it is granted: credential names and modes, user credentials, agents it may call. */
export function AgentDetailPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const [editing, setEditing] = useState(false);
  const name = useParams().name ?? "";
  const base = `/admin/v1/agents/${encodeURIComponent(name)}`;
  const agent = useQuery({ queryKey: ["agents", name], queryFn: () => api.get<Agent>(base) });
  const grants = useQuery({ queryKey: ["agents", name, "grants"], queryFn: () => api.get<Grants>(`${base}/grants`) });
  const g = grants.data;
  return (
    <section>
      <p>
        <Link to="/agents">Agents</Link> / {name}
      </p>
      <div className="heading">
        <h1>Agent {name}</h1>
        {g && can.change(role) && (
          <button type="button" onClick={() => setEditing(true)}>
            Edit grants
          </button>
        )}
      </div>
      <ErrorAlert error={agent.error ?? grants.error} />
      {agent.data && (
        <dl className="props">
          <dt>Upstream URL</dt>
          <dd>
            <code>{agent.data.upstream}</code>
          </dd>
          <dt>Description</dt>
          <dd>{agent.data.description ?? "none"}</dd>
        </dl>
      )}
      <h2>Granted credentials</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Credential</th>
            <th scope="col">Mode</th>
          </tr>
        </thead>
        <tbody>
          {(g?.credentials ?? []).map((c) => (
            <tr key={c.name}>
              <td>
                <Link to={`/credentials/${encodeURIComponent(c.name)}`}>{c.name}</Link>
              </td>
              <td>{c.mode}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {g && g.credentials.length === 0 && <p>No credentials granted.</p>}
      <h2>Other grants</h2>
      <dl className="props">
        <dt>User credentials</dt>
        <dd>{g?.user_credentials.join(", ") || "none"}</dd>
        <dt>May call agents</dt>
        <dd>{g?.may_call.join(", ") || "none"}</dd>
      </dl>
      {editing && g && (
        <GrantsForm
          grants={g}
          onClose={() => setEditing(false)}
          onSaved={async () => {
            setEditing(false);
            await qc.invalidateQueries({ queryKey: ["agents", name] });
          }}
        />
      )}
    </section>
  );
}
