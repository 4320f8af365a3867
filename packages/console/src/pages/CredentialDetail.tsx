import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { CredentialDetail } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { RowAction } from "../ui/RowAction";

/** A credential's metadata and versions; values are never part of any response the console reads. */
export function CredentialDetailPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const name = useParams().name ?? "";
  const base = `/admin/v1/credentials/${encodeURIComponent(name)}`;
  const cred = useQuery({ queryKey: ["credentials", name], queryFn: () => api.get<CredentialDetail>(base) });
  const c = cred.data;
  return (
    <section>
      <p>
        <Link to="/credentials">Credentials</Link> / {name}
      </p>
      <h1>Credential {name}</h1>
      <ErrorAlert error={cred.error} />
      {c && (
        <>
          <dl className="props">
            <dt>Type</dt>
            <dd>{c.type}</dd>
            <dt>Current version</dt>
            <dd>{c.version ?? "none"}</dd>
            <dt>Status</dt>
            <dd>
              {c.status}
              {c.status_message ? `: ${c.status_message}` : ""}
            </dd>
            <dt>Egress</dt>
            <dd>{c.egress ? `${c.egress.header} (${c.egress.format}) to ${c.egress.base_url}` : "none"}</dd>
            {c.provider && (
              <>
                <dt>Token provider</dt>
                <dd>
                  {c.provider.token_url}, client {c.provider.client_id}
                  {c.provider.scope ? `, scope ${c.provider.scope}` : ""}
                </dd>
              </>
            )}
          </dl>
          <h2>Versions</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Source</th>
                <th scope="col">Created by</th>
                <th scope="col">Created</th>
                {can.change(role) && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {c.versions.map((v) => (
                <tr key={v.version}>
                  <td>
                    {v.version}
                    {v.rolled_back_from !== null && (
                      <span className="muted"> (rollback from {v.rolled_back_from})</span>
                    )}
                  </td>
                  <td>{v.source}</td>
                  <td>{v.created_by}</td>
                  <td>{new Date(v.created_at).toLocaleString()}</td>
                  {can.change(role) && (
                    <td>
                      {v.version !== c.version && (
                        <RowAction
                          label={`Roll back to ${v.version}`}
                          run={() => api.post(`${base}/rollback`, { version: v.version })}
                          done={() => qc.invalidateQueries({ queryKey: ["credentials"] })}
                        />
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
