import { type FormEvent, useId, useState } from "react";
import { Dialog } from "./Dialog";
import { ErrorAlert } from "./ErrorAlert";

export interface Field {
  name: string;
  label: string;
  type?: "text" | "url" | "number" | "password" | "datetime-local";
  required?: boolean;
  placeholder?: string;
  hint?: string;
  initial?: string;
  min?: number;
}

/**
 * A create form in a dialog. The browser validates required/typed fields first; whatever the
 * server still refuses is shown with its code and message, and the dialog stays open to fix it.
 */
export function FormDialog(props: {
  title: string;
  fields: Field[];
  submitLabel?: string;
  onSubmit: (values: Record<string, string>) => Promise<void>;
  onClose: () => void;
}) {
  const formId = useId();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const values: Record<string, string> = {};
    for (const f of props.fields) {
      // A secret is sent exactly as typed; other fields lose stray spaces.
      const raw = String(data.get(f.name) ?? "");
      values[f.name] = f.type === "password" ? raw : raw.trim();
    }
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(values);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form onSubmit={submit} className="form">
        {props.fields.map((f) => (
          <div key={f.name} className="field">
            <label htmlFor={`${formId}-${f.name}`}>{f.label}</label>
            <input
              id={`${formId}-${f.name}`}
              name={f.name}
              type={f.type ?? "text"}
              required={f.required ?? false}
              placeholder={f.placeholder}
              defaultValue={f.initial}
              min={f.min}
              aria-describedby={f.hint ? `${formId}-${f.name}-hint` : undefined}
            />
            {f.hint && (
              <small id={`${formId}-${f.name}-hint`} className="muted">
                {f.hint}
              </small>
            )}
          </div>
        ))}
        <ErrorAlert error={error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Working…" : (props.submitLabel ?? "Create")}
          </button>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
