import { useState } from "react";
import { useApi } from "../api-context";
import type { IssuedKey, Key } from "../types";
import { FormDialog } from "../ui/FormDialog";
import { RowAction } from "../ui/RowAction";

const path = (k: Key, action: string) => `/admin/v1/keys/${encodeURIComponent(k.id)}${action}`;
const named = (k: Key) => (k.name ? ` (${k.name}, ${k.owner})` : ` (${k.owner})`);

/**
 * What can be done to a key in its state (keys/key-state.ts): revoke and freeze ask first, in a
 * dialog naming the key; rotate asks for the grace period and hands the new secret to `onIssued`.
 * Shown only to roles that may change keys; the server decides anyway.
 */
export function KeyActions(props: { k: Key; onChanged: () => unknown; onIssued: (issued: IssuedKey) => void }) {
  const api = useApi();
  const { k, onChanged } = props;
  const [rotating, setRotating] = useState(false);
  const live = (k.status === "active" || k.status === "frozen") && !k.rotated_to;
  return (
    <>
      {k.status !== "revoked" && (
        <RowAction
          label="Revoke"
          run={() => api.post(path(k, "/revoke"))}
          done={onChanged}
          confirm={{
            title: `Revoke key ${k.id}?`,
            message: (
              <p>
                Key <code>{k.id}</code>
                {named(k)} stops working at once, for good: a revoked key cannot be restored.
              </p>
            ),
          }}
        />
      )}
      {live && k.status === "active" && (
        <RowAction
          label="Freeze"
          run={() => api.post(path(k, "/freeze"))}
          done={onChanged}
          confirm={{
            title: `Freeze key ${k.id}?`,
            message: (
              <p>
                Every request with key <code>{k.id}</code>
                {named(k)} is refused until you unfreeze it.
              </p>
            ),
          }}
        />
      )}
      {live && k.status === "frozen" && (
        <RowAction label="Unfreeze" run={() => api.post(path(k, "/unfreeze"))} done={onChanged} />
      )}
      {live && k.status === "active" && (
        <button type="button" onClick={() => setRotating(true)}>
          Rotate
        </button>
      )}
      {rotating && (
        <FormDialog
          title={`Rotate key ${k.id}`}
          submitLabel="Rotate"
          intro="A new key with the same settings is issued; this one keeps working for the grace period, then expires."
          fields={[
            {
              name: "grace",
              label: "Grace period in seconds",
              type: "number",
              required: true,
              initial: "3600",
              min: 0,
              max: 30 * 86_400,
              hint: "up to 30 days (2592000); 0 ends the old key now",
            },
          ]}
          onClose={() => setRotating(false)}
          onSubmit={async (v) => {
            const rotated = await api.post<IssuedKey>(path(k, "/rotate"), { grace_s: Number(v.grace) });
            setRotating(false);
            props.onIssued(rotated);
            await onChanged();
          }}
        />
      )}
    </>
  );
}
