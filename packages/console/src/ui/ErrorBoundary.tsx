import { Component, type ReactNode } from "react";

/**
 * A page that throws while rendering shows this, not a blank screen; the menu above stays, so
 * another page is one click away (Layout keys the boundary by path, so it resets there).
 */
export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: unknown) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div role="alert" className="error">
        <strong>Error</strong> <code>client_error</code>: this page could not be shown ({this.state.error.message}).{" "}
        <button type="button" onClick={() => window.location.reload()}>
          Reload
        </button>
      </div>
    );
  }
}
