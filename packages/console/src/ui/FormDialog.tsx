import { type FormEvent, Fragment, useId, useState } from "react";
import { Dialog } from "./Dialog";
import { ErrorAlert } from "./ErrorAlert";
import { fieldProblem } from "./validate";

export interface Field {
  name: string;
  label: string;
  type?: "text" | "url" | "number" | "password" | "datetime-local" | "select";
  required?: boolean;
  placeholder?: string;
  hint?: string;
  initial?: string;
  min?: number;
  max?: number;
  /** For `select`: value and label of each option. */
  options?: readonly (readonly [value: string, label: string])[];
  /** What only this form knows to check (an owner's form, an address list): the message, or undefined. */
  check?: (value: string, all: Record<string, string>) => string | undefined;
  /** Consecutive fields of one group are shown together in a fieldset with this legend. */
  group?: string;
}

type Values = Record<string, string>;

/** A secret is kept exactly as typed; other fields lose stray spaces. */
function read(form: HTMLFormElement, fields: Field[]): Values {
  const data = new FormData(form);
  const values: Values = {};
  for (const f of fields) {
    const raw = String(data.get(f.name) ?? "");
    values[f.name] = f.type === "password" ? raw : raw.trim();
  }
  return values;
}

const initialValues = (fields: Field[]): Values =>
  Object.fromEntries(
    fields.map((f) => [f.name, f.initial ?? (f.type === "select" ? (f.options?.[0]?.[0] ?? "") : "")]),
  );

/**
 * A form in a dialog. The console checks every field first (ui/validate.ts) and shows what is wrong
 * beside it, focusing the first such field; whatever the server still refuses is shown with its
 * code and message, and the dialog stays open to fix it. `fields` may depend on the values so far
 * (a credential's type decides which fields it has).
 */
export function FormDialog(props: {
  title: string;
  fields: Field[] | ((values: Values) => Field[]);
  submitLabel?: string;
  intro?: string;
  onSubmit: (values: Values) => Promise<void>;
  onClose: () => void;
}) {
  const formId = useId();
  const fieldsFor = (v: Values) => (typeof props.fields === "function" ? props.fields(v) : props.fields);
  const [values, setValues] = useState<Values>(() => {
    const first = initialValues(fieldsFor({}));
    return { ...first, ...initialValues(fieldsFor(first)) };
  });
  const fields = fieldsFor(values);
  const [problems, setProblems] = useState<Values>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const id = (f: Field, part = "") => `${formId}-${f.name}${part}`;

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const current = read(form, fields);
    const found: Values = {};
    for (const f of fields) {
      const p = fieldProblem(f, current[f.name] ?? "", current);
      if (p) found[f.name] = p;
    }
    setProblems(found);
    const firstBad = fields.find((f) => found[f.name]);
    if (firstBad) {
      (form.elements.namedItem(firstBad.name) as HTMLElement | null)?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(current);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const control = (f: Field) => {
    const problem = problems[f.name];
    const describedBy = [f.hint && id(f, "-hint"), problem && id(f, "-problem")].filter(Boolean).join(" ");
    const common = {
      id: id(f),
      name: f.name,
      defaultValue: values[f.name] ?? f.initial,
      "aria-invalid": problem ? true : undefined,
      "aria-describedby": describedBy || undefined,
      "aria-required": f.required || undefined,
    };
    return (
      <div key={f.name} className="field">
        <label htmlFor={id(f)}>{f.label}</label>
        {f.type === "select" ? (
          <select {...common}>
            {(f.options ?? []).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        ) : (
          <input
            {...common}
            type={f.type ?? "text"}
            placeholder={f.placeholder}
            min={f.min}
            max={f.max}
            autoComplete={f.type === "password" ? "new-password" : "off"}
            spellCheck={false}
          />
        )}
        {f.hint && (
          <small id={id(f, "-hint")} className="muted">
            {f.hint}
          </small>
        )}
        {problem && (
          <small id={id(f, "-problem")} className="field-problem">
            {problem}
          </small>
        )}
      </div>
    );
  };

  // Consecutive fields of one group share a fieldset.
  const runs: { group: string | undefined; fields: Field[] }[] = [];
  for (const f of fields) {
    const last = runs[runs.length - 1];
    if (last && last.group === f.group) last.fields.push(f);
    else runs.push({ group: f.group, fields: [f] });
  }

  return (
    <Dialog title={props.title} onClose={props.onClose}>
      {/* noValidate: the console's own checks speak, beside the field, the same way in every browser. */}
      <form
        onSubmit={submit}
        noValidate
        className="form"
        onChange={(e) => {
          const current = read(e.currentTarget, fields);
          const changed = (e.target as { name?: string }).name ?? "";
          if (changed && problems[changed]) setProblems(({ [changed]: _, ...rest }) => rest);
          setValues((v) => ({ ...v, ...current }));
        }}
      >
        {props.intro && <p className="muted">{props.intro}</p>}
        {runs.map((run) =>
          run.group ? (
            <fieldset key={run.fields[0]?.name} className="group">
              <legend>{run.group}</legend>
              {run.fields.map(control)}
            </fieldset>
          ) : (
            <Fragment key={run.fields[0]?.name}>{run.fields.map(control)}</Fragment>
          ),
        )}
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
