import { type FormEvent, useState } from "react";
import { useApi } from "./api-context";
import { ErrorAlert } from "./ui/ErrorAlert";

/**
 * The admin token goes to POST /admin/v1/sessions once and is dropped: the session is the HttpOnly
 * cookie the server sets. The field is cleared from the DOM when the app replaces this page.
 */
export function SignIn() {
  const api = useApi();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const token = String(new FormData(form).get("token") ?? "").trim();
    setBusy(true);
    setError(null);
    try {
      await api.signIn(token);
    } catch (err) {
      setError(err);
      setBusy(false);
      form.reset();
    }
  };
  return (
    <main className="signin">
      <h1>Keyward console</h1>
      <form onSubmit={submit} className="form">
        <div className="field">
          <label htmlFor="admin-token">Admin token</label>
          <input id="admin-token" name="token" type="password" autoComplete="off" required spellCheck={false} />
        </div>
        <ErrorAlert error={error} />
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      <p className="muted">
        Use the admin token <code>keyward serve</code> printed at first start, or one created under Admin tokens.
      </p>
    </main>
  );
}
