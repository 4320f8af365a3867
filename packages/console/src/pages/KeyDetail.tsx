import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { Key, KeyAddress, UsageBucket } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { FormDialog } from "../ui/FormDialog";
import { UsageChart } from "../ui/UsageChart";

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
  const k = key.data;
  const editable = k && can.change(role) && (k.status === "active" || k.status === "frozen") && !k.rotated_to;
  return (
    <section>
      <p>
        <Link to="/keys">Keys</Link> / {id}
      </p>
      <div className="heading">
        <h1>Key {id}</h1>
        {editable && (
          <button type="button" onClick={() => setEditing(true)}>
            Edit
          </button>
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
          <dd>{k.rotated_to ? `rotated to ${k.rotated_to}` : k.status}</dd>
          <dt>Scopes</dt>
          <dd>{k.scopes.join(", ") || "none"}</dd>
          <dt>Rate limit</dt>
          <dd>{k.rate_limit ? `${k.rate_limit.limit} per ${k.rate_limit.window_s} s` : "none"}</dd>
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
          fields={editFields(k)}
          onClose={() => setEditing(false)}
          onSubmit={async (v) => {
            await api.patch(base, patchBody(k, v));
            setEditing(false);
            await qc.invalidateQueries({ queryKey: ["keys"] });
          }}
        />
      )}
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

const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

/** datetime-local shows local wall time; the API speaks RFC 3339. */
function localInput(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function editFields(k: Key) {
  return [
    { name: "name", label: "Name", initial: k.name ?? "" },
    { name: "scopes", label: "Scopes", initial: k.scopes.join(", "), hint: "comma-separated" },
    {
      name: "rate",
      label: "Rate limit per minute",
      type: "number" as const,
      min: 1,
      initial: perMinute(k),
      hint: "empty: no limit",
    },
    {
      name: "ip_allow",
      label: "Allowed addresses",
      initial: k.ip_allow?.join(", ") ?? "",
      hint: "comma-separated IPs or CIDRs; empty: any",
    },
    {
      name: "expires",
      label: "Expires",
      type: "datetime-local" as const,
      initial: localInput(k.expires_at),
      hint: "empty: never",
    },
  ];
}

const perMinute = (k: Key) =>
  k.rate_limit ? String(Math.round((k.rate_limit.limit * 60) / k.rate_limit.window_s)) : "";

/**
 * Empty fields clear the setting (null), as the API's PATCH reads them. An untouched rate limit is
 * sent back as it was, so a limit set per hour by the CLI is not rounded into a per-minute one.
 */
function patchBody(k: Key, v: Record<string, string>) {
  const ips = list(v.ip_allow);
  return {
    name: v.name ? v.name : null,
    scopes: list(v.scopes),
    rate_limit: v.rate === perMinute(k) ? k.rate_limit : v.rate ? { limit: Number(v.rate), window_s: 60 } : null,
    ip_allow: ips.length > 0 ? ips : null,
    expires_at: v.expires ? new Date(v.expires).toISOString() : null,
  };
}
