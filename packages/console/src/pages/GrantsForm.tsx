import { type FormEvent, useId, useState } from "react";
import { useApi } from "../api-context";
import type { Grants } from "../types";
import { Dialog } from "../ui/Dialog";
import { ErrorAlert } from "../ui/ErrorAlert";
import { CREDENTIAL_NAME, eachEntry, NAME, splitList } from "../ui/validate";

type Mode = "read" | "inject";
interface Row {
  id: number;
  name: string;
  mode: Mode;
}

/** Problems with the rows and lists, before anything is sent; the server checks them again. */
function problemsOf(rows: Row[], users: string, calls: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const [i, r] of rows.entries()) {
    if (!CREDENTIAL_NAME.test(r.name)) out.push(`Credential ${i + 1}: "${r.name}" is not a credential name.`);
    else if (seen.has(r.name)) out.push(`Credential ${i + 1}: ${r.name} is listed twice.`);
    seen.add(r.name);
  }
  const u = eachEntry((s) => CREDENTIAL_NAME.test(s), "a credential name", 1000)(users);
  if (u) out.push(`User credentials: ${u}`);
  const c = eachEntry((s) => NAME.test(s), "an agent name", 1000)(calls);
  if (c) out.push(`May call agents: ${c}`);
  return out;
}

/**
 * Replaces an agent's grants (PUT …/agents/:name/grants): which credentials it may read (the value
 * is handed to it) or inject (Keyward adds it on egress, the agent never sees it), which users'
 * credentials it may use, and which agents it may call. Names only: no value is ever shown here.
 */
export function GrantsForm(props: { grants: Grants; onClose: () => void; onSaved: () => Promise<unknown> }) {
  const api = useApi();
  const formId = useId();
  const g = props.grants;
  const [seq, setSeq] = useState(g.credentials.length);
  const [rows, setRows] = useState<Row[]>(g.credentials.map((c, i) => ({ id: i, ...c })));
  const [problems, setProblems] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const update = (id: number, patch: Partial<Row>) =>
    setRows((rs) => rs.map((r) => (r.id === id ? { ...r, ...patch } : r)));

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const d = new FormData(e.currentTarget);
    const users = String(d.get("user_credentials") ?? "");
    const calls = String(d.get("may_call") ?? "");
    const clean = rows.map((r) => ({ ...r, name: r.name.trim() }));
    const found = problemsOf(clean, users, calls);
    setProblems(found);
    if (found.length > 0) return;
    setBusy(true);
    setError(null);
    try {
      await api.put(`/admin/v1/agents/${encodeURIComponent(g.agent)}/grants`, {
        credentials: clean.map((r) => ({ name: r.name, mode: r.mode })),
        user_credentials: splitList(users),
        may_call: splitList(calls),
      });
      await props.onSaved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Grants of ${g.agent}`} onClose={props.onClose}>
      <form className="form" noValidate onSubmit={submit}>
        <fieldset className="grants">
          <legend>Credentials</legend>
          {rows.length === 0 && <p className="muted">None granted.</p>}
          {rows.map((r, i) => (
            <div key={r.id} className="grant-row">
              <input
                aria-label={`Credential ${i + 1} name`}
                value={r.name}
                placeholder="openai"
                spellCheck={false}
                onChange={(e) => update(r.id, { name: e.target.value })}
              />
              <select
                aria-label={`Credential ${i + 1} mode`}
                value={r.mode}
                onChange={(e) => update(r.id, { mode: e.target.value as Mode })}
              >
                <option value="inject">inject (egress adds it)</option>
                <option value="read">read (the agent gets the value)</option>
              </select>
              <button
                type="button"
                aria-label={`Remove credential ${i + 1}`}
                onClick={() => setRows((rs) => rs.filter((x) => x.id !== r.id))}
              >
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            onClick={() => {
              setRows((rs) => [...rs, { id: seq, name: "", mode: "inject" }]);
              setSeq((n) => n + 1);
            }}
          >
            Add credential
          </button>
        </fieldset>
        <div className="field">
          <label htmlFor={`${formId}-users`}>User credentials</label>
          <input
            id={`${formId}-users`}
            name="user_credentials"
            defaultValue={g.user_credentials.join(", ")}
            aria-describedby={`${formId}-users-hint`}
            spellCheck={false}
          />
          <small id={`${formId}-users-hint`} className="muted">
            names of per-user credentials it may use on a user's behalf, comma-separated
          </small>
        </div>
        <div className="field">
          <label htmlFor={`${formId}-calls`}>May call agents</label>
          <input
            id={`${formId}-calls`}
            name="may_call"
            defaultValue={g.may_call.join(", ")}
            aria-describedby={`${formId}-calls-hint`}
            spellCheck={false}
          />
          <small id={`${formId}-calls-hint`} className="muted">
            agent names, comma-separated
          </small>
        </div>
        {problems.length > 0 && (
          <ul role="alert" className="field-problem">
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        )}
        <ErrorAlert error={error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Working…" : "Save"}
          </button>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
