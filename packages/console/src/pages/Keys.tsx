import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { IssuedKey, Key } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { RowAction } from "../ui/RowAction";
import { ShowOnce } from "../ui/ShowOnce";

const path = (k: Key, action = "") => `/admin/v1/keys/${encodeURIComponent(k.id)}${action}`;

export function KeysPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const [owner, setOwner] = useState("");
  const list = usePaged<Key>("keys", "/admin/v1/keys", { owner: owner || undefined });
  const [creating, setCreating] = useState(false);
  const [rotating, setRotating] = useState<Key | null>(null);
  // The show-once secret: held only until Done, never cached by the query client.
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: ["keys"] });
  const change = can.change(role);
  return (
    <section>
      <div className="heading">
        <h1>Keys</h1>
        {change && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New key
          </button>
        )}
      </div>
      <form
        className="filters"
        aria-label="Key filters"
        onSubmit={(e) => {
          e.preventDefault();
          setOwner(String(new FormData(e.currentTarget).get("owner") ?? "").trim());
        }}
      >
        {/* Not labelled "Owner": that is the New key form's field, and labels should stay unique. */}
        <div className="field">
          <label htmlFor="keys-of">Show keys of</label>
          <input id="keys-of" name="owner" placeholder="consumer:acme" />
        </div>
        <button type="submit">Filter</button>
      </form>
      <PagedTable
        list={list}
        columns={["Key", "Name", "Owner", "Scopes", "Rate limit", "Status", "Last used", change && "Actions"]}
        empty="No keys yet."
      >
        {(k) => (
          <tr key={k.id}>
            <td>
              <Link to={`/keys/${encodeURIComponent(k.id)}`}>{k.id}</Link>
            </td>
            <td>{k.name ?? ""}</td>
            <td>{k.owner}</td>
            <td>{k.scopes.join(", ")}</td>
            <td>{k.rate_limit ? `${k.rate_limit.limit} / ${k.rate_limit.window_s} s` : "none"}</td>
            <td>
              <span className={`status status-${k.status}`}>{k.rotated_to ? "rotated" : k.status}</span>
            </td>
            <td>{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "never"}</td>
            {change && (
              <td className="row-actions">
                {(k.status === "active" || k.status === "frozen") && (
                  <RowAction label="Revoke" run={() => api.post(path(k, "/revoke"))} done={refresh} />
                )}
                {k.status === "active" && !k.rotated_to && (
                  <RowAction label="Freeze" run={() => api.post(path(k, "/freeze"))} done={refresh} />
                )}
                {k.status === "frozen" && (
                  <RowAction label="Unfreeze" run={() => api.post(path(k, "/unfreeze"))} done={refresh} />
                )}
                {k.status === "active" && !k.rotated_to && (
                  <button type="button" onClick={() => setRotating(k)}>
                    Rotate
                  </button>
                )}
              </td>
            )}
          </tr>
        )}
      </PagedTable>
      {creating && (
        <FormDialog
          title="New key"
          fields={[
            {
              name: "owner",
              label: "Owner",
              required: true,
              placeholder: "consumer:acme",
              hint: "consumer:<name>, agent:<name> or user:<id>",
            },
            { name: "scopes", label: "Scopes", placeholder: "read, write", hint: "comma-separated" },
            { name: "rate", label: "Rate limit per minute", type: "number", min: 1, hint: "empty: no limit" },
          ]}
          onClose={() => setCreating(false)}
          onSubmit={async (v) => {
            const scopes = (v.scopes ?? "")
              .split(",")
              .map((s) => s.trim())
              .filter((s) => s !== "");
            const body: Record<string, unknown> = { owner: v.owner, scopes };
            if (v.rate) body.rate_limit = { limit: Number(v.rate), window_s: 60 };
            const created = await api.post<IssuedKey>("/admin/v1/keys", body);
            setCreating(false);
            setIssued(created);
            await refresh();
          }}
        />
      )}
      {rotating && (
        <FormDialog
          title={`Rotate ${rotating.id}`}
          submitLabel="Rotate"
          fields={[
            {
              name: "grace",
              label: "Grace period in seconds",
              type: "number",
              initial: "3600",
              min: 0,
              hint: "the old key keeps working this long (0 ends it now)",
            },
          ]}
          onClose={() => setRotating(null)}
          onSubmit={async (v) => {
            const rotated = await api.post<IssuedKey>(path(rotating, "/rotate"), {
              grace_s: v.grace ? Number(v.grace) : 0,
            });
            setRotating(null);
            setIssued(rotated);
            await refresh();
          }}
        />
      )}
      {issued && <ShowOnce title={`Key ${issued.key.id}`} secret={issued.secret} onDone={() => setIssued(null)} />}
    </section>
  );
}
