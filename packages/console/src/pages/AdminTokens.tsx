import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useApi, usePaged } from "../api-context";
import type { AdminToken, AdminTokenCreated, Role } from "../types";
import { Dialog } from "../ui/Dialog";
import { ErrorAlert } from "../ui/ErrorAlert";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";
import { ShowOnce } from "../ui/ShowOnce";

const ROLES: Role[] = ["owner", "operator", "viewer", "auditor"];

/** Owners only: the link is hidden for other roles and the server answers them 403. */
export function AdminTokensPage() {
  const api = useApi();
  const qc = useQueryClient();
  const list = usePaged<AdminToken>("admin-tokens", "/admin/v1/admin-tokens");
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<AdminTokenCreated | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: ["admin-tokens"] });
  return (
    <section>
      <div className="heading">
        <h1>Admin tokens</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New admin token
        </button>
      </div>
      <PagedTable list={list} columns={["Name", "Id", "Role", "Status", "Actions"]}>
        {(t) => (
          <tr key={t.id}>
            <td>{t.name}</td>
            <td>{t.id}</td>
            <td>{t.role}</td>
            <td>{t.status}</td>
            <td>
              {t.status === "active" && (
                <RowAction
                  label="Revoke"
                  run={() => api.post(`/admin/v1/admin-tokens/${encodeURIComponent(t.id)}/revoke`)}
                  done={refresh}
                />
              )}
            </td>
          </tr>
        )}
      </PagedTable>
      {creating && (
        <CreateForm
          onClose={() => setCreating(false)}
          onCreated={async (c) => {
            setCreating(false);
            setCreated(c);
            await refresh();
          }}
        />
      )}
      {created && (
        <ShowOnce
          title={`Admin token ${created.admin_token.name}`}
          secret={created.secret}
          onDone={() => setCreated(null)}
        />
      )}
    </section>
  );
}

function CreateForm(props: { onClose: () => void; onCreated: (c: AdminTokenCreated) => Promise<void> }) {
  const api = useApi();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const d = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const c = await api.post<AdminTokenCreated>("/admin/v1/admin-tokens", {
        name: String(d.get("name") ?? "").trim(),
        role: String(d.get("role")),
      });
      await props.onCreated(c);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Dialog title="New admin token" onClose={props.onClose}>
      <form className="form" onSubmit={submit}>
        <div className="field">
          <label htmlFor="admin-token-name">Name</label>
          <input id="admin-token-name" name="name" required maxLength={64} />
        </div>
        <div className="field">
          <label htmlFor="admin-token-role">Role</label>
          <select id="admin-token-role" name="role" defaultValue="viewer">
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <ErrorAlert error={error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Working…" : "Create"}
          </button>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
