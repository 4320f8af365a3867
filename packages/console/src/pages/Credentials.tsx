import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Credential } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";

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
        <WriteOnlyForm
          onClose={() => setSetting(false)}
          onSubmit={async (name, value) => {
            await api.put(`/admin/v1/credentials/${encodeURIComponent(name)}`, { value });
            setSetting(false);
            await qc.invalidateQueries({ queryKey: ["credentials"] });
          }}
        />
      )}
    </section>
  );
}

/** A static value, written and forgotten: a password input, never read back or kept in state. */
function WriteOnlyForm(props: { onClose: () => void; onSubmit: (name: string, value: string) => Promise<void> }) {
  return (
    <FormDialog
      title="Set credential"
      submitLabel="Save"
      fields={[
        { name: "name", label: "Name", required: true, placeholder: "openai" },
        { name: "value", label: "Value", type: "password", required: true, hint: "write-only: never shown again" },
      ]}
      onClose={props.onClose}
      onSubmit={(v) => props.onSubmit(v.name ?? "", v.value ?? "")}
    />
  );
}
