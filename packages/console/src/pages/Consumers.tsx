import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Consumer } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";

export function ConsumersPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const list = usePaged<Consumer>("consumers", "/admin/v1/consumers");
  const [creating, setCreating] = useState(false);
  const refresh = () => qc.invalidateQueries({ queryKey: ["consumers"] });
  return (
    <section>
      <div className="heading">
        <h1>Consumers</h1>
        {can.change(role) && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New consumer
          </button>
        )}
      </div>
      <PagedTable list={list} columns={["Name", "Created", can.change(role) && "Actions"]} empty="No consumers yet.">
        {(c) => (
          <tr key={c.name}>
            <td>{c.name}</td>
            <td>{new Date(c.created_at).toLocaleString()}</td>
            {can.change(role) && (
              <td>
                <RowAction
                  label="Delete"
                  run={() => api.delete(`/admin/v1/consumers/${encodeURIComponent(c.name)}`)}
                  done={refresh}
                />
              </td>
            )}
          </tr>
        )}
      </PagedTable>
      {creating && (
        <FormDialog
          title="New consumer"
          fields={[{ name: "name", label: "Name", required: true, placeholder: "acme" }]}
          onClose={() => setCreating(false)}
          onSubmit={async (v) => {
            await api.post("/admin/v1/consumers", { name: v.name });
            setCreating(false);
            await refresh();
          }}
        />
      )}
    </section>
  );
}
