import { useState } from "react";
import { ErrorAlert } from "./ErrorAlert";

/**
 * One button in a table row that calls the API: disabled while it runs, its failure shown next to
 * it with code and message. No confirm() prompt: the agreed e2e flow clicks "Revoke" once, and a
 * native prompt is dismissed by default under automation.
 */
export function RowAction(props: { label: string; run: () => Promise<unknown>; done?: (result: unknown) => unknown }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <>
      <button
        type="button"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            const result = await props.run();
            await props.done?.(result);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        {props.label}
      </button>
      <ErrorAlert error={error} />
    </>
  );
}
