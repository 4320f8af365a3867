import { useState } from "react";
import { Dialog } from "./Dialog";

/**
 * The one place a secret is rendered. The parent holds the secret only while this is open and
 * drops it on Done, so it is gone from the page (and from React state) once dismissed.
 */
export function ShowOnce(props: { title: string; secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  return (
    <Dialog title={props.title} onClose={props.onDone}>
      <p className="warning">
        This secret is shown once. Copy it now and store it safely: Keyward keeps only its hash and cannot show it
        again.
      </p>
      <p>
        <code className="secret">{props.secret}</code>
      </p>
      <div className="actions">
        <button
          type="button"
          onClick={() => {
            // navigator.clipboard exists only in secure contexts (https, localhost).
            if (!navigator.clipboard) return setCopied("failed");
            navigator.clipboard.writeText(props.secret).then(
              () => setCopied("yes"),
              () => setCopied("failed"),
            );
          }}
        >
          Copy
        </button>
        <button type="button" className="primary" onClick={props.onDone}>
          Done
        </button>
        <span role="status">
          {copied === "yes" ? "Copied" : copied === "failed" ? "Copy failed: select the text and copy it" : ""}
        </span>
      </div>
    </Dialog>
  );
}
