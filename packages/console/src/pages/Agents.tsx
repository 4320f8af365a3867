import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Agent } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { FormDialog } from "../ui/FormDialog";
import { Pager } from "../ui/Pager";
import { RowAction } from "../ui/RowAction";

export function AgentsPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const list = usePaged<Agent>("agents", "/admin/v1/agents");
  const [creating, setCreating] = useState(false);
  const refresh = () => qc.invalidateQueries({ queryKey: ["agents"] });
  return (
    <section>
      <div className="heading">
        <h1>Agents</h1>
        {can.change(role) && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New agent
          </button>
        )}
      </div>
      <ErrorAlert error={list.query.error} />
      {list.query.isPending && <p role="status">Loading…</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Upstream URL</th>
            <th scope="col">Description</th>
            <th scope="col">Created</th>
            {can.change(role) && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {list.items.map((a) => (
            <tr key={a.name}>
              <td>
                <Link to={`/agents/${encodeURIComponent(a.name)}`}>{a.name}</Link>
              </td>
              <td>
                <code>{a.upstream}</code>
              </td>
              <td>{a.description ?? ""}</td>
              <td>{new Date(a.created_at).toLocaleString()}</td>
              {can.change(role) && (
                <td>
                  <RowAction
                    label="Delete"
                    run={() => api.delete(`/admin/v1/agents/${encodeURIComponent(a.name)}`)}
                    done={refresh}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {list.query.isSuccess && list.items.length === 0 && <p>No agents yet.</p>}
      <Pager {...list} />
      {creating && (
        <FormDialog
          title="New agent"
          fields={[
            { name: "name", label: "Name", required: true, placeholder: "billing-bot" },
            {
              name: "upstream",
              label: "Upstream URL",
              type: "url",
              required: true,
              placeholder: "https://api.example.com",
            },
          ]}
          onClose={() => setCreating(false)}
          onSubmit={async (v) => {
            await api.post("/admin/v1/agents", { name: v.name, upstream: v.upstream });
            setCreating(false);
            await refresh();
          }}
        />
      )}
    </section>
  );
}
