import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Credential } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { credentialBody, credentialFields } from "./credential-form";

/** Names, versions and provider status only: the API never returns a value, and neither do we. */
export function CredentialsPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const list = usePaged<Credential>("credentials", "/admin/v1/credentials");
  const [setting, setSetting] = useState(false);
  return (
    <section>
      <div className="heading">
        <h1>Credentials</h1>
        {can.change(role) && (
          <button type="button" className="primary" onClick={() => setSetting(true)}>
            Set credential
          </button>
        )}
      </div>
      <PagedTable list={list} columns={["Name", "Type", "Version", "Status", "Updated"]} empty="No credentials yet.">
        {(c) => (
          <tr key={c.name}>
            <td>
              <Link to={`/credentials/${encodeURIComponent(c.name)}`}>{c.name}</Link>
            </td>
            <td>{c.type}</td>
            <td>{c.version ?? ""}</td>
            <td>
              <span className={`status status-${c.status}`}>{c.status}</span>
              {c.status_message && <span className="muted"> {c.status_message}</span>}
            </td>
            <td>{new Date(c.updated_at).toLocaleString()}</td>
          </tr>
        )}
      </PagedTable>
      {setting && (
        <FormDialog
          title="Set credential"
          submitLabel="Save"
          fields={(v) => credentialFields(v)}
          onClose={() => setSetting(false)}
          onSubmit={async (v) => {
            await api.put(`/admin/v1/credentials/${encodeURIComponent(v.name ?? "")}`, credentialBody(v));
            setSetting(false);
            await qc.invalidateQueries({ queryKey: ["credentials"] });
          }}
        />
      )}
    </section>
  );
}
