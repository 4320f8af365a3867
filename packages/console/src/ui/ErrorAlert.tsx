import { ApiError, UnreachableError } from "../api";

/** Every failure is shown with its code and message (and the request id, for a support ticket). */
export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    return (
      <div role="alert" className="error">
        <strong>{error.status === 403 ? "Not allowed" : "Error"}</strong> <code>{error.code}</code>: {error.message}
        {error.requestId && <span className="muted"> (request {error.requestId})</span>}
      </div>
    );
  }
  const message = error instanceof UnreachableError ? error.message : "Something went wrong in the console";
  return (
    <div role="alert" className="error">
      <strong>Error</strong> <code>{error instanceof UnreachableError ? "unreachable" : "client_error"}</code>:{" "}
      {message}
    </div>
  );
}
