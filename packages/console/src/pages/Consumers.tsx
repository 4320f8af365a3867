import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Consumer } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";
import { matches, NAME } from "../ui/validate";

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
                  confirm={{
                    title: `Delete consumer ${c.name}?`,
                    message: <p>The consumer goes, and every key it owns is revoked at once.</p>,
                  }}
                />
              </td>
            )}
          </tr>
        )}
      </PagedTable>
      {creating && (
        <FormDialog
          title="New consumer"
          fields={[
            {
              name: "name",
              label: "Name",
              required: true,
              placeholder: "acme",
              hint: "lower-case letters, digits and -",
              check: matches(NAME, "Lower-case letters, digits and -, starting with a letter or digit (up to 63)."),
            },
          ]}
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
