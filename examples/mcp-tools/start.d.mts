// Types for start.mjs (plain JavaScript, so the example runs with node alone).

export interface DemoUser {
  id: string;
  functions: string[];
  /** false: the user has not linked a cloud account (no `aliyun_ak` is set). */
  linked?: boolean;
}

export const DEMO_USERS: DemoUser[];

export function newAccessKey(): string;

/** The fake cloud API the user's tool process calls. */
export interface FakeCloud {
  url: string;
  /** Access key → the account it opens; read on every request, so keys can be added later. */
  accounts: Record<string, { account: string; functions: string[] }>;
  /** The access key of every call that reached the service (null when none was sent). */
  requests: (string | null)[];
  close(): Promise<void>;
}

export interface RunningExample {
  keywardUrl: string;
  mcpUrl: string;
  users: Record<string, { key: string; accessKey?: string }>;
  cloud: FakeCloud;
  /**
   * Keyward's admin API with the example's admin token: resolves with the parsed body (typed as the
   * caller says it expects: nothing is validated), throws on an error status.
   */
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** What `keyward serve` has printed so far (stdout and stderr). */
  logs(): string;
  close(): Promise<void>;
}

export function startExample(opts?: {
  users?: DemoUser[];
  /** Overrides settings of the config's `mcp` block (e.g. `{max_processes: 60}`). */
  mcp?: Record<string, unknown>;
  logLevel?: string;
  /** One log line per request (KEYWARD_ACCESS_LOG), e.g. to check that no line holds a secret. */
  accessLog?: boolean;
  /** `keyward serve --workers` (default: the CLI's, one per core). */
  workers?: number;
}): Promise<RunningExample>;

/** `keyward serve --config <configFile>` as a child process; resolves once it listens. */
export function serve(
  configFile: string,
  dataDir: string,
  workers: number | undefined,
  env: Record<string, string>,
): Promise<{ url: string; logs(): string; stop(): Promise<void> }>;
