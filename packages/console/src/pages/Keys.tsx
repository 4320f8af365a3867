import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, usePaged, useSignedIn } from "../api-context";
import type { IssuedKey, Key } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { PagedTable } from "../ui/PagedTable";
import { ShowOnce } from "../ui/ShowOnce";
import { OWNER } from "../ui/validate";
import { KeyActions } from "./KeyActions";
import { createBody, createFields } from "./key-form";

export const rateText = (k: Key) => (k.rate_limit ? `${k.rate_limit.limit} / ${k.rate_limit.window_s} s` : "none");
export const quotaText = (k: Key) => (k.quota ? `${k.quota.limit} per ${k.quota.period}` : "none");

export function KeysPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const qc = useQueryClient();
  const [owner, setOwner] = useState("");
  const [ownerProblem, setOwnerProblem] = useState("");
  const list = usePaged<Key>("keys", "/admin/v1/keys", { owner: owner || undefined });
  const [creating, setCreating] = useState(false);
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
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          const value = String(new FormData(e.currentTarget).get("owner") ?? "").trim();
          const bad = value !== "" && !OWNER.test(value);
          setOwnerProblem(bad ? "Must be consumer:<name>, agent:<name> or user:<id>." : "");
          if (!bad) setOwner(value);
        }}
      >
        {/* Not labelled "Owner": that is the New key form's field, and labels should stay unique. */}
        <div className="field">
          <label htmlFor="keys-of">Show keys of</label>
          <input
            id="keys-of"
            name="owner"
            placeholder="consumer:acme"
            aria-invalid={ownerProblem ? true : undefined}
            aria-describedby={ownerProblem ? "keys-of-problem" : undefined}
          />
          {ownerProblem && (
            <small id="keys-of-problem" className="field-problem">
              {ownerProblem}
            </small>
          )}
        </div>
        <button type="submit">Filter</button>
      </form>
      <PagedTable
        list={list}
        columns={["Key", "Name", "Owner", "Scopes", "Rate limit", "Quota", "Status", "Last used", change && "Actions"]}
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
            <td>{rateText(k)}</td>
            <td>{quotaText(k)}</td>
            <td>
              <span className={`status status-${k.status}`}>{k.rotated_to ? "rotated" : k.status}</span>
            </td>
            <td>{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : "never"}</td>
            {change && (
              <td>
                <div className="row-actions">
                  <KeyActions k={k} onChanged={refresh} onIssued={setIssued} />
                </div>
              </td>
            )}
          </tr>
        )}
      </PagedTable>
      {creating && (
        <FormDialog
          title="New key"
          fields={createFields()}
          onClose={() => setCreating(false)}
          onSubmit={async (v) => {
            const created = await api.post<IssuedKey>("/admin/v1/keys", createBody(v));
            setCreating(false);
            setIssued(created);
            await refresh();
          }}
        />
      )}
      {issued && <ShowOnce title={`Key ${issued.key.id}`} secret={issued.secret} onDone={() => setIssued(null)} />}
    </section>
  );
}
