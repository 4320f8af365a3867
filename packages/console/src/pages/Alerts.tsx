import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Alert } from "../types";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";

export function AlertsPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const [status, setStatus] = useState<"" | "open" | "acked">("open");
  const list = usePaged<Alert>("alerts", "/admin/v1/alerts", { status: status || undefined });
  const refresh = () => qc.invalidateQueries({ queryKey: ["alerts"] });
  const change = can.change(role);
  return (
    <section>
      <div className="heading">
        <h1>Alerts</h1>
        <div className="field inline">
          <label htmlFor="alert-status">Status</label>
          <select id="alert-status" value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="open">Open</option>
            <option value="acked">Acknowledged</option>
            <option value="">All</option>
          </select>
        </div>
      </div>
      <PagedTable
        list={list}
        columns={["Alert", "Rule", "Severity", "Key", "Status", "Raised", change && "Actions"]}
        empty="No alerts."
      >
        {(a) => (
          <tr key={a.id}>
            <td>{a.id}</td>
            <td>{a.rule}</td>
            <td>
              <span className={`status status-${a.severity}`}>{a.severity}</span>
            </td>
            <td>{a.key_id ? <Link to={`/keys/${encodeURIComponent(a.key_id)}`}>{a.key_id}</Link> : ""}</td>
            <td>{a.status}</td>
            <td>{new Date(a.created_at).toLocaleString()}</td>
            {change && (
              <td>
                <div className="row-actions">
                  {a.status === "open" && (
                    <RowAction
                      label="Ack"
                      run={() => api.post(`/admin/v1/alerts/${encodeURIComponent(a.id)}/ack`)}
                      done={refresh}
                    />
                  )}
                  {a.key_id && (
                    <RowAction
                      label="Freeze key"
                      run={() => api.post(`/admin/v1/keys/${encodeURIComponent(a.key_id ?? "")}/freeze`)}
                      done={() => qc.invalidateQueries({ queryKey: ["keys"] })}
                      confirm={{
                        title: `Freeze key ${a.key_id}?`,
                        message: (
                          <p>
                            Every request with key <code>{a.key_id}</code> is refused until it is unfrozen (alert{" "}
                            {a.rule}
                            ).
                          </p>
                        ),
                      }}
                    />
                  )}
                </div>
              </td>
            )}
          </tr>
        )}
      </PagedTable>
    </section>
  );
}
