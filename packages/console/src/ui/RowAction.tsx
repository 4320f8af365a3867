import { type ReactNode, useState } from "react";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorAlert } from "./ErrorAlert";

export interface Confirm {
  /** Names the thing: "Revoke key key_…?". */
  title: string;
  message: ReactNode;
}

/**
 * One button that calls the API: disabled while it runs, its failure shown next to it with code
 * and message. With `confirm`, it first opens a dialog naming what it acts on (our own dialog, not
 * window.confirm: that one cannot say which key in a way a screen reader and a test can both read).
 */
export function RowAction(props: {
  label: string;
  run: () => Promise<unknown>;
  done?: (result: unknown) => unknown;
  confirm?: Confirm;
}) {
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const { confirm } = props;
  return (
    <>
      <button
        type="button"
        disabled={busy}
        onClick={async () => {
          if (confirm) return setAsking(true);
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
        {busy ? "Working…" : props.label}
      </button>
      <ErrorAlert error={error} />
      {confirm && asking && (
        <ConfirmDialog
          title={confirm.title}
          confirmLabel={props.label}
          run={props.run}
          onDone={async (result) => {
            setAsking(false);
            await props.done?.(result);
          }}
          onClose={() => setAsking(false)}
        >
          {confirm.message}
        </ConfirmDialog>
      )}
    </>
  );
}
