import { type FormEvent, useState } from "react";
import { useApi, usePaged } from "../api-context";
import type { AuditEvent, AuditPage as AuditPageBody, AuditVerify } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { PagedTable } from "../ui/PagedTable";

interface Filters {
  action?: string;
  principal?: string;
  since?: string;
  until?: string;
}

/** datetime-local gives local wall time without a zone; the API wants RFC 3339. */
const toInstant = (v: FormDataEntryValue | null) => (v ? new Date(String(v)).toISOString() : undefined);

export function AuditPage() {
  const api = useApi();
  const [filters, setFilters] = useState<Filters>({});
  const list = usePaged<AuditEvent>("audit", "/admin/v1/audit", { ...filters }, (b) => {
    const page = b as AuditPageBody;
    return { items: page.events, next_cursor: page.next_cursor };
  });
  const [verify, setVerify] = useState<{ busy: boolean; result?: AuditVerify; error?: unknown }>({ busy: false });
  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const d = new FormData(e.currentTarget);
    const text = (k: string) => String(d.get(k) ?? "").trim() || undefined;
    const next: Filters = {};
    const action = text("action");
    const principal = text("principal");
    const since = toInstant(d.get("since"));
    const until = toInstant(d.get("until"));
    if (action) next.action = action;
    if (principal) next.principal = principal;
    if (since) next.since = since;
    if (until) next.until = until;
    setFilters(next);
  };
  const runVerify = async () => {
    setVerify({ busy: true });
    try {
      setVerify({ busy: false, result: await api.get<AuditVerify>("/admin/v1/audit/verify") });
    } catch (error) {
      setVerify({ busy: false, error });
    }
  };
  return (
    <section>
      <div className="heading">
        <h1>Audit</h1>
        <button type="button" onClick={runVerify} disabled={verify.busy}>
          {verify.busy ? "Verifying…" : "Verify chain"}
        </button>
      </div>
      {verify.result && (
        <p role="status" className={verify.result.ok ? "ok" : "error"}>
          {verify.result.ok
            ? `Chain intact: ${verify.result.count} records verified.`
            : `Chain broken (${verify.result.reason}) at sequence ${verify.result.first_broken_seq}, after ${verify.result.count} records.`}
        </p>
      )}
      <ErrorAlert error={verify.error} />
      <form className="filters" onSubmit={apply} aria-label="Audit filters">
        <div className="field">
          <label htmlFor="audit-action">Action</label>
          <input id="audit-action" name="action" placeholder="key.revoke" />
        </div>
        <div className="field">
          <label htmlFor="audit-principal">Principal</label>
          <input id="audit-principal" name="principal" placeholder="admin:adm_… or a key id" />
        </div>
        <div className="field">
          <label htmlFor="audit-since">Since</label>
          <input id="audit-since" name="since" type="datetime-local" />
        </div>
        <div className="field">
          <label htmlFor="audit-until">Until</label>
          <input id="audit-until" name="until" type="datetime-local" />
        </div>
        <button type="submit">Filter</button>
      </form>
      <PagedTable
        list={list}
        columns={["Seq", "Time", "Action", "Actor", "Target", "Outcome", "Code", "Address"]}
        empty="No audit records match."
      >
        {(e) => (
          <tr key={e.seq}>
            <td>{e.seq}</td>
            <td>{new Date(e.time).toLocaleString()}</td>
            <td>{e.action}</td>
            <td>{e.actor}</td>
            <td>{e.target ?? ""}</td>
            <td>
              <span className={`status status-${e.outcome}`}>{e.outcome}</span>
            </td>
            <td>{e.code ?? ""}</td>
            <td>{e.ip ?? ""}</td>
          </tr>
        )}
      </PagedTable>
    </section>
  );
}
