import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { IssuedKey, Key, KeyAddress, UsageBucket } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { FormDialog } from "../ui/FormDialog";
import { ShowOnce } from "../ui/ShowOnce";
import { UsageChart } from "../ui/UsageChart";
import { KeyActions } from "./KeyActions";
import { quotaText, rateText } from "./Keys";
import { patchBody, policyFields } from "./key-form";

export function KeyDetailPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const id = useParams().id ?? "";
  const base = `/admin/v1/keys/${encodeURIComponent(id)}`;
  const key = useQuery({ queryKey: ["keys", id], queryFn: () => api.get<Key>(base), enabled: can.read(role) });
  const usage = useQuery({
    queryKey: ["usage", "series", id],
    queryFn: () => api.get<{ items: UsageBucket[] }>(`${base}/usage`, { step: "1h" }),
  });
  const addresses = useQuery({
    queryKey: ["keys", id, "addresses"],
    queryFn: () => api.get<{ items: KeyAddress[] }>(`${base}/addresses`),
    enabled: can.read(role),
  });
  const deniedByCode = new Map<string, number>();
  for (const b of usage.data?.items ?? []) {
    for (const [code, n] of Object.entries(b.denied)) deniedByCode.set(code, (deniedByCode.get(code) ?? 0) + n);
  }
  const qc = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: ["keys"] });
  const k = key.data;
  const editable = k && can.change(role) && (k.status === "active" || k.status === "frozen") && !k.rotated_to;
  return (
    <section>
      <p>
        <Link to="/keys">Keys</Link> / {id}
      </p>
      <div className="heading">
        <h1>Key {id}</h1>
        {k && can.change(role) && (
          <div className="row-actions">
            {editable && (
              <button type="button" onClick={() => setEditing(true)}>
                Edit
              </button>
            )}
            <KeyActions k={k} onChanged={refresh} onIssued={setIssued} />
          </div>
        )}
      </div>
      <ErrorAlert error={key.error ?? usage.error ?? addresses.error} />
      {k && (
        <dl className="props">
          <dt>Name</dt>
          <dd>{k.name ?? "none"}</dd>
          <dt>Owner</dt>
          <dd>{k.owner}</dd>
          <dt>Status</dt>
          <dd>
            {k.rotated_to ? (
              <>
                rotated to <Link to={`/keys/${encodeURIComponent(k.rotated_to)}`}>{k.rotated_to}</Link>
              </>
            ) : (
              k.status
            )}
          </dd>
          <dt>Scopes</dt>
          <dd>{k.scopes.join(", ") || "none"}</dd>
          <dt>Rate limit</dt>
          <dd>{rateText(k)}</dd>
          <dt>Quota</dt>
          <dd>{quotaText(k)}</dd>
          <dt>Allowed addresses</dt>
          <dd>{k.ip_allow?.join(", ") ?? "any"}</dd>
          <dt>Expires</dt>
          <dd>{k.expires_at ? new Date(k.expires_at).toLocaleString() : "never"}</dd>
        </dl>
      )}
      {editing && k && (
        <FormDialog
          title={`Edit ${k.id}`}
          submitLabel="Save"
          fields={policyFields(k)}
          onClose={() => setEditing(false)}
          onSubmit={async (v) => {
            const body = patchBody(k, v);
            if (Object.keys(body).length > 0) await api.patch(base, body);
            setEditing(false);
            await refresh();
          }}
        />
      )}
      {issued && <ShowOnce title={`Key ${issued.key.id}`} secret={issued.secret} onDone={() => setIssued(null)} />}
      {usage.data && <UsageChart title="Requests, last 24 hours" buckets={usage.data.items} />}
      <h2>Denials by code</h2>
      {deniedByCode.size === 0 ? (
        <p>No denials in the last 24 hours.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Code</th>
              <th scope="col">Count</th>
            </tr>
          </thead>
          <tbody>
            {[...deniedByCode].map(([code, n]) => (
              <tr key={code}>
                <td>{code}</td>
                <td>{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {can.read(role) && (
        <>
          <h2>Last source addresses</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Address</th>
                <th scope="col">Requests</th>
                <th scope="col">First seen</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {(addresses.data?.items ?? []).map((a) => (
                <tr key={a.ip}>
                  <td>{a.ip}</td>
                  <td>{a.count}</td>
                  <td>{new Date(a.first_seen).toLocaleString()}</td>
                  <td>{new Date(a.last_seen).toLocaleString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
