import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Agent } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";
import { matches, NAME } from "../ui/validate";

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
      <PagedTable
        list={list}
        columns={["Name", "Upstream URL", "Description", "Created", can.change(role) && "Actions"]}
        empty="No agents yet."
      >
        {(a) => (
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
                  confirm={{
                    title: `Delete agent ${a.name}?`,
                    message: <p>The agent, its grants and every key it owns go: its keys are revoked at once.</p>,
                  }}
                />
              </td>
            )}
          </tr>
        )}
      </PagedTable>
      {creating && (
        <FormDialog
          title="New agent"
          fields={[
            {
              name: "name",
              label: "Name",
              required: true,
              placeholder: "billing-bot",
              hint: "lower-case letters, digits and -",
              check: matches(NAME, "Lower-case letters, digits and -, starting with a letter or digit (up to 63)."),
            },
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
