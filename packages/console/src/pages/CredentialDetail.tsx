import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { CredentialDetail } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { FormDialog } from "../ui/FormDialog";
import { RowAction } from "../ui/RowAction";
import { credentialBody, credentialFields } from "./credential-form";

/** A credential's metadata and versions; values are never part of any response the console reads. */
export function CredentialDetailPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const name = useParams().name ?? "";
  const base = `/admin/v1/credentials/${encodeURIComponent(name)}`;
  const cred = useQuery({ queryKey: ["credentials", name], queryFn: () => api.get<CredentialDetail>(base) });
  const [writing, setWriting] = useState(false);
  const refresh = () => qc.invalidateQueries({ queryKey: ["credentials"] });
  const c = cred.data;
  const change = can.change(role);
  return (
    <section>
      <p>
        <Link to="/credentials">Credentials</Link> / {name}
      </p>
      <div className="heading">
        <h1>Credential {name}</h1>
        {c && change && (
          <div className="row-actions">
            <button type="button" onClick={() => setWriting(true)}>
              New version
            </button>
            <RowAction
              label="Delete"
              run={() => api.delete(base)}
              done={async () => {
                await refresh();
                navigate("/credentials");
              }}
              confirm={{
                title: `Delete credential ${name}?`,
                message: <p>Agents granted it lose it at their next read, and its egress stops adding it.</p>,
              }}
            />
          </div>
        )}
      </div>
      <ErrorAlert error={cred.error} />
      {c && (
        <>
          <dl className="props">
            <dt>Type</dt>
            <dd>{c.type === "static" ? "static value" : "token provider (OAuth2 client credentials)"}</dd>
            <dt>Current version</dt>
            <dd>{c.version ?? "none"}</dd>
            <dt>Status</dt>
            <dd>
              <span className={`status status-${c.status}`}>{c.status}</span>
              {c.status_message ? `: ${c.status_message}` : ""}
            </dd>
            <dt>Egress</dt>
            <dd>
              {c.egress ? (
                <>
                  <code>
                    {c.egress.header}: {c.egress.format}
                  </code>{" "}
                  to <code>{c.egress.base_url}</code>
                </>
              ) : (
                "none"
              )}
            </dd>
            {c.provider && (
              <>
                <dt>Token URL</dt>
                <dd>
                  <code>{c.provider.token_url}</code>
                </dd>
                <dt>Client ID</dt>
                <dd>{c.provider.client_id}</dd>
                <dt>Scope</dt>
                <dd>{c.provider.scope ?? "none"}</dd>
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
                {change && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {c.versions.map((v) => (
                <tr key={v.version}>
                  <td>
                    {v.version}
                    {v.version === c.version && <span className="muted"> (current)</span>}
                    {v.rolled_back_from !== null && (
                      <span className="muted"> (a copy of version {v.rolled_back_from})</span>
                    )}
                  </td>
                  <td>{v.source}</td>
                  <td>{v.created_by}</td>
                  <td>{new Date(v.created_at).toLocaleString()}</td>
                  {change && (
                    <td>
                      {/* A token provider's tokens are fetched, not rolled back (the server says 400). */}
                      {v.version !== c.version && c.type === "static" && (
                        <RowAction
                          label={`Roll back to ${v.version}`}
                          run={() => api.post(`${base}/rollback`, { version: v.version })}
                          done={refresh}
                          confirm={{
                            title: `Roll ${name} back to version ${v.version}?`,
                            message: (
                              <p>
                                A new version is made equal to version {v.version}; agents get it at their next read.
                                Version {c.version} stays in the history.
                              </p>
                            ),
                          }}
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
      {writing && c && (
        <FormDialog
          title={`New version of ${name}`}
          submitLabel="Save"
          intro="The value (or client secret) is write-only: type it again. Other settings start as they are."
          fields={(v) => credentialFields(v, c)}
          onClose={() => setWriting(false)}
          onSubmit={async (v) => {
            await api.put(base, credentialBody(v, c));
            setWriting(false);
            await refresh();
          }}
        />
      )}
    </section>
  );
}
