import { useQueries, useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { can } from "../api";
import { useApi, useSignedIn } from "../api-context";
import type { Alert, Page, UsageBucket, UsageTop } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { UsageChart } from "../ui/UsageChart";

const TOP = 5;

/** Sums the per-key series of the top keys into one line each for allowed and denied. */
function merge(series: UsageBucket[][]): UsageBucket[] {
  const byT = new Map<string, UsageBucket>();
  for (const s of series) {
    for (const b of s) {
      const m = byT.get(b.t) ?? { t: b.t, allowed: 0, denied: {} };
      m.allowed += b.allowed;
      for (const [code, n] of Object.entries(b.denied)) m.denied[code] = (m.denied[code] ?? 0) + n;
      byT.set(b.t, m);
    }
  }
  return [...byT.values()].sort((a, b) => a.t.localeCompare(b.t));
}

export function OverviewPage() {
  const api = useApi();
  const { role } = useSignedIn();
  const top = useQuery({
    queryKey: ["usage", "top", "key"],
    queryFn: () => api.get<UsageTop>("/admin/v1/usage", { group_by: "key", top: TOP }),
  });
  const agents = useQuery({
    queryKey: ["usage", "top", "agent"],
    queryFn: () => api.get<UsageTop>("/admin/v1/usage", { group_by: "agent", top: TOP }),
  });
  const alerts = useQuery({
    queryKey: ["alerts", "open-count"],
    queryFn: () => api.get<Page<Alert>>("/admin/v1/alerts", { status: "open", limit: 100 }),
    enabled: can.read(role),
  });
  const series = useQueries({
    queries: (top.data?.items ?? []).map((g) => ({
      queryKey: ["usage", "series", g.id],
      queryFn: () =>
        api.get<{ items: UsageBucket[] }>(`/admin/v1/keys/${encodeURIComponent(g.id)}/usage`, { step: "1h" }),
    })),
  });
  const merged = merge(series.flatMap((q) => (q.data ? [q.data.items] : [])));
  const openAlerts = alerts.data ? `${alerts.data.items.length}${alerts.data.next_cursor ? "+" : ""}` : "…";
  return (
    <section>
      <h1>Overview</h1>
      <ErrorAlert error={top.error ?? agents.error ?? alerts.error} />
      {can.read(role) && (
        <p className="stat">
          <Link to="/alerts">Open alerts: {openAlerts}</Link>
        </p>
      )}
      <UsageChart title={`Requests of the top ${TOP} keys, last 24 hours`} buckets={merged} />
      <div className="columns">
        <TopTable title="Top keys" label="Key" top={top.data} link={(id) => `/keys/${encodeURIComponent(id)}`} />
        <TopTable title="Top agents" label="Agent" top={agents.data} />
      </div>
    </section>
  );
}

function TopTable(props: { title: string; label: string; top: UsageTop | undefined; link?: (id: string) => string }) {
  return (
    <div>
      <h2>{props.title}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">{props.label}</th>
            <th scope="col">Allowed</th>
            <th scope="col">Denied</th>
          </tr>
        </thead>
        <tbody>
          {(props.top?.items ?? []).map((g) => (
            <tr key={g.id}>
              <td>{props.link ? <Link to={props.link(g.id)}>{g.id}</Link> : g.id}</td>
              <td>{g.allowed}</td>
              <td>{g.denied}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.top && props.top.items.length === 0 && <p>No traffic in the last 24 hours.</p>}
    </div>
  );
}
