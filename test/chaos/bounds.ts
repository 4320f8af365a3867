// The bounds the chaos tests run with: short, so a file stays within seconds, and the same on
// every replica (docs/operations.md: every replica runs the same settings). Each test asserts the
// answer comes within its bound plus SLACK_MS (a loaded CI machine, a process start).

/** `database:` in the replicas' config file (docs/operations.md, "Database timeouts"). */
export const DATABASE = {
  connect_timeout_ms: 1000,
  statement_timeout_ms: 2000,
  lock_timeout_ms: 500,
  idle_in_transaction_timeout_ms: 3000,
  query_timeout_ms: 1500,
  transaction_timeout_ms: 4000,
  audit_write_timeout_ms: 1200,
} as const;

/** What a loaded machine may add to any bound. */
export const SLACK_MS = 1500;

export const CONFIG = { database: DATABASE };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gateway request on a key this replica has not minted an upstream JWT for: it must be audited. */
export async function tokenRequest(
  url: string,
  secret: string,
  agent = "echo",
): Promise<{ status: number; code: string | undefined; requestId: string | null }> {
  const res = await fetch(`${url}/agents/${agent}/echo`, { headers: { "x-api-key": secret } });
  const text = await res.text();
  const code = res.status === 200 ? undefined : (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  return { status: res.status, code, requestId: res.headers.get("x-request-id") };
}
