import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { Alert } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { Pager } from "../ui/Pager";
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
      <ErrorAlert error={list.query.error} />
      {list.query.isPending && <p role="status">Loading…</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">Alert</th>
            <th scope="col">Rule</th>
            <th scope="col">Severity</th>
            <th scope="col">Key</th>
            <th scope="col">Status</th>
            <th scope="col">Raised</th>
            {change && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {list.items.map((a) => (
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
                <td className="row-actions">
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
                    />
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {list.query.isSuccess && list.items.length === 0 && <p>No alerts.</p>}
      <Pager {...list} />
    </section>
  );
}
