import { useQueryClient } from "@tanstack/react-query";
import { NavLink, Outlet, useLocation } from "react-router";
import { can } from "./api";
import { useApi, useReachable, useSignedIn } from "./api-context";
import { ErrorBoundary } from "./ui/ErrorBoundary";

const LINKS = [
  ["/", "Overview"],
  ["/agents", "Agents"],
  ["/consumers", "Consumers"],
  ["/keys", "Keys"],
  ["/credentials", "Credentials"],
  ["/users", "Users"],
  ["/audit", "Audit"],
  ["/alerts", "Alerts"],
] as const;

export function Layout() {
  const api = useApi();
  const session = useSignedIn();
  const reachable = useReachable();
  const queryClient = useQueryClient();
  const { pathname } = useLocation();
  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Keyward</span>
        <nav aria-label="Main">
          <ul>
            {LINKS.map(([to, label]) => (
              <li key={to}>
                <NavLink to={to} end={to === "/"}>
                  {label}
                </NavLink>
              </li>
            ))}
            {can.admins(session.role) && (
              <li>
                <NavLink to="/admin-tokens">Admin tokens</NavLink>
              </li>
            )}
          </ul>
        </nav>
        <span className="who">
          <span className="muted">{session.role}</span>
          <button
            type="button"
            onClick={() => {
              // Sign-out ends the in-memory session even if the server is down (the banner says so);
              // cached pages go too, so the next person to sign in sees only what their role may.
              api
                .signOut()
                .catch(() => undefined)
                .finally(() => queryClient.clear());
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      {!reachable && (
        <div role="alert" className="banner">
          Keyward is not reachable. Check that <code>keyward serve</code> is running; the console retries on your next
          action.
        </div>
      )}
      <main className="content">
        <ErrorBoundary key={pathname}>
          <Outlet />
        </ErrorBoundary>
      </main>
    </div>
  );
}
