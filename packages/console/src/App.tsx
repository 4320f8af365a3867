import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Route, Routes } from "react-router";
import { useApi, useReachable, useRestoring, useSession } from "./api-context";
import { Layout } from "./Layout";
import { AdminTokensPage } from "./pages/AdminTokens";
import { AgentDetailPage } from "./pages/AgentDetail";
import { AgentsPage } from "./pages/Agents";
import { AlertsPage } from "./pages/Alerts";
import { AuditPage } from "./pages/Audit";
import { ConsumersPage } from "./pages/Consumers";
import { CredentialDetailPage } from "./pages/CredentialDetail";
import { CredentialsPage } from "./pages/Credentials";
import { KeyDetailPage } from "./pages/KeyDetail";
import { KeysPage } from "./pages/Keys";
import { OverviewPage } from "./pages/Overview";
import { UsersPage } from "./pages/Users";
import { SignIn } from "./SignIn";

/**
 * Signed out (first visit, reload, or a 401 from an expired session), the sign-in form replaces the
 * page at the same URL, so signing in again lands where the user was. A reload keeps a live session:
 * at start the app asks GET /admin/v1/sessions/current for it and its CSRF token (held in memory
 * only), and shows neither page nor form until it knows.
 */
export function App() {
  const api = useApi();
  const session = useSession();
  const restoring = useRestoring();
  const reachable = useReachable();
  const queryClient = useQueryClient();
  useEffect(() => {
    void api.restore();
  }, [api]);
  useEffect(() => {
    if (!session) queryClient.clear();
  }, [session, queryClient]);
  if (restoring) {
    return (
      <p role="status" className="muted">
        Loading…
      </p>
    );
  }
  if (!session) {
    return (
      <>
        {!reachable && (
          <div role="alert" className="banner">
            Keyward is not reachable. Check that <code>keyward serve</code> is running.
          </div>
        )}
        <SignIn />
      </>
    );
  }
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<OverviewPage />} />
        <Route path="agents" element={<AgentsPage />} />
        <Route path="agents/:name" element={<AgentDetailPage />} />
        <Route path="consumers" element={<ConsumersPage />} />
        <Route path="keys" element={<KeysPage />} />
        <Route path="keys/:id" element={<KeyDetailPage />} />
        <Route path="credentials" element={<CredentialsPage />} />
        <Route path="credentials/:name" element={<CredentialDetailPage />} />
        <Route path="users" element={<UsersPage />} />
        <Route path="audit" element={<AuditPage />} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="admin-tokens" element={<AdminTokensPage />} />
        <Route path="*" element={<p>No such page.</p>} />
      </Route>
    </Routes>
  );
}
