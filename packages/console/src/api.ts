import type { Role, Session } from "./types";

/** An error answered by the server: `{error: {code, message, request_id}}` (SPEC §3). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The server could not be reached at all (no HTTP answer). */
export class UnreachableError extends Error {
  constructor() {
    super("Keyward is not reachable");
    this.name = "UnreachableError";
  }
}

/** Who is signed in. The CSRF token lives only here, in memory: never in Web Storage or a cookie. */
export interface SignedIn {
  adminId: string;
  role: Role;
  csrf: string;
}

interface State {
  session: SignedIn | null;
  reachable: boolean;
  /** True until `restore` has asked the server for the cookie's session: neither page nor form yet. */
  restoring: boolean;
}

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * The console's one door to /admin/v1: same-origin cookie credentials, the session's CSRF token on
 * every change, errors parsed into ApiError. A 401 ends the in-memory session (the app then shows
 * sign-in on the same path); a fetch that gets no answer flips `reachable` for the banner.
 */
export class Api {
  private state: State = { session: null, reachable: true, restoring: true };
  private readonly listeners = new Set<() => void>();

  constructor(private readonly fetchImpl: Fetch = (input, init) => fetch(input, init)) {}

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly snapshot = (): State => this.state;

  private set(next: Partial<State>): void {
    if (Object.entries(next).every(([k, v]) => this.state[k as keyof State] === v)) return;
    this.state = { ...this.state, ...next };
    for (const l of this.listeners) l();
  }

  async signIn(token: string): Promise<SignedIn> {
    const session = signedIn(await this.request<Session>("POST", "/admin/v1/sessions", { token }));
    this.set({ session, restoring: false });
    return session;
  }

  /**
   * At start (a first visit or a reload): the cookie's session, if it is still alive, with its CSRF
   * token, so a reload stays signed in while the token still lives only in memory. A 401 (no live
   * session) or no answer at all (the banner says so) leaves the sign-in form.
   */
  async restore(): Promise<void> {
    try {
      const session = signedIn(await this.request<Session>("GET", "/admin/v1/sessions/current"));
      this.set({ session, restoring: false });
    } catch {
      this.set({ restoring: false });
    }
  }

  async signOut(): Promise<void> {
    try {
      await this.request<void>("DELETE", "/admin/v1/sessions/current");
    } finally {
      this.set({ session: null });
    }
  }

  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
    return this.request<T>("GET", withQuery(path, query));
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, body);
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  delete(path: string): Promise<void> {
    return this.request<void>("DELETE", path);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const csrf = this.state.session?.csrf;
    if (UNSAFE.has(method) && csrf !== undefined) headers["x-csrf-token"] = csrf;
    let res: Response;
    try {
      res = await this.fetchImpl(path, {
        method,
        headers,
        credentials: "same-origin",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      this.set({ reachable: false });
      throw new UnreachableError();
    }
    // A proxy in front of a stopped server answers 502/503/504 with no error body of ours.
    const gatewayDown = res.status >= 502 && res.status <= 504;
    this.set({ reachable: !gatewayDown });
    if (res.ok) {
      if (res.status === 204) return undefined as T;
      return (await res.json()) as T;
    }
    const err = await parseError(res);
    // Sign-in's own 401 is a wrong token, shown on the form; any other 401 means the session ended.
    if (res.status === 401 && path !== "/admin/v1/sessions") this.set({ session: null });
    throw err;
  }
}

function signedIn(s: Session): SignedIn {
  return { adminId: s.admin_token.id, role: s.admin_token.role, csrf: s.csrf_token };
}

function withQuery(path: string, query?: Record<string, string | number | undefined>): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function parseError(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; request_id?: unknown } } | undefined)?.error;
  if (e && typeof e.code === "string" && typeof e.message === "string") {
    return new ApiError(res.status, e.code, e.message, typeof e.request_id === "string" ? e.request_id : null);
  }
  return new ApiError(res.status, `http_${res.status}`, res.statusText || "unexpected response", null);
}

/** What each role may do, mirroring admin/admin-roles.ts (the server refuses it anyway). */
export const can = {
  change: (r: Role) => r === "owner" || r === "operator",
  read: (r: Role) => r !== "auditor",
  admins: (r: Role) => r === "owner",
};
