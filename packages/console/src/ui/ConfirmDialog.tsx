import { type ReactNode, useState } from "react";
import { Dialog } from "./Dialog";
import { ErrorAlert } from "./ErrorAlert";

/**
 * "Are you sure?" for a change that cannot be taken back or stops traffic (revoke, freeze, roll
 * back). The title names the thing; the action runs from here, shows its progress, and a refusal
 * stays in the dialog with its code and message. Cancel (or Escape) is the default: it comes first.
 */
export function ConfirmDialog(props: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  run: () => Promise<unknown>;
  onDone: (result: unknown) => unknown;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <div className="confirm-text">{props.children}</div>
      <ErrorAlert error={error} />
      <div className="actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              const result = await props.run();
              await props.onDone(result);
            } catch (err) {
              setError(err);
              setBusy(false);
            }
          }}
        >
          {busy ? "Working…" : props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
