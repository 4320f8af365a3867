import { KeywardError, StaleCredentialError, UnknownCredentialError } from "../errors.js";
import { type ExchangedToken, exchangeToken } from "../exchange.js";
import { isOutage } from "../http/http-errors.js";
import { createTools, type KeywardTools } from "../tools/tools.js";
import { createToolsApi } from "../tools/tools-api.js";
import { CredentialSet } from "./credential-set.js";
import { type CredentialsApi, createCredentialsApi } from "./credentials-api.js";
import { CacheWriter, readCache } from "./disk-cache.js";
import { Emitter, type KeywardEvents, type Listener } from "./emitter.js";
import { Freshness } from "./freshness.js";
import { type ConnectOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { resolvePlaceholders } from "./resolve.js";
import { Staleness } from "./staleness.js";
import { type AccessToken, createTokenGetter, type TokenCredential, toAccessToken } from "./token-credential.js";

const expired = (name: string) =>
  new KeywardError(
    "credential_expired",
    `the token of credential "${name}" has expired and Keyward has no newer one yet`,
  );

const OK = 0;
const STALE = 1;
const CLOSED = 2;

/** Rewrite the disk cache's timestamp at least this often while nothing changes. */
const CACHE_TOUCH_MS = 60 * 60_000;

/**
 * A connected agent: every credential granted to it in `read` mode, held in memory and kept fresh
 * by Keyward's event stream (polling as fallback). Create one with {@link Keyward.connect} at
 * start-up, read values with {@link Keyward.get} wherever they are needed, and
 * {@link Keyward.close} it on shutdown.
 *
 * @example
 * ```ts
 * const kw = await Keyward.connect({ url: process.env.KEYWARD_URL!, token: process.env.KEYWARD_AGENT_KEY! });
 * const db = new pg.Pool(kw.resolve({ connectionString: "postgres://app:${credentials.db_password}@db/app" }));
 * process.once("SIGTERM", () => void kw.close());
 * ```
 */
export class Keyward {
  readonly #opts: ResolvedOptions;
  readonly #closing = new AbortController();
  readonly #emitter = new Emitter();
  readonly #set: CredentialSet;
  readonly #entries: CredentialSet["entries"];
  readonly #api: CredentialsApi;
  readonly #staleness: Staleness;
  readonly #freshness: Freshness;
  readonly #cache: CacheWriter | undefined;
  #state = OK;
  #cacheSavedAt = 0;
  #closed: Promise<void> | undefined;
  #detachSignal: (() => void) | undefined;
  #tools: ReturnType<typeof createTools> | undefined;

  private constructor(opts: ResolvedOptions) {
    this.#opts = opts;
    this.#set = new CredentialSet(this.#emitter);
    this.#entries = this.#set.entries;
    this.#api = createCredentialsApi(opts, this.#closing.signal);
    this.#staleness = new Staleness(
      opts.clock,
      opts.maxStale,
      (stale) => {
        if (this.#state === CLOSED) return;
        this.#state = stale ? STALE : OK;
        if (stale) this.#emitter.emit("error", this.#staleError());
      },
      // A failed question is not news: the stream and polling report an unreachable server.
      () => void this.#freshness.sync().catch(() => {}),
    );
    const { cache } = opts;
    this.#cache =
      cache &&
      new CacheWriter(
        cache.file,
        cache.key,
        opts.url,
        () => {
          this.#cacheSavedAt = this.#staleness.lastContact;
          return this.#set.snapshot(this.#cacheSavedAt);
        },
        (err) => this.#emitter.emit("error", err),
      );
    this.#freshness = new Freshness({
      opts,
      api: this.#api,
      set: this.#set,
      closed: this.#closing.signal,
      contact: () => this.#contact(),
      changed: () => this.#cache?.request(),
      error: (err) => this.#emitter.emit("error", err),
    });
  }

  /**
   * Loads every credential granted to the agent in one request, then keeps them fresh in the
   * background. Fails with a {@link KeywardError} carrying the server's code on a refused key or
   * token (401/403). When the server is unreachable it fails too, unless `cacheFile` holds a copy
   * younger than `maxStale`: then it starts from that copy and keeps trying to reach the server.
   *
   * The disk cache trades a little exposure for availability: the values then exist on disk,
   * encrypted with `cacheKey`, so whoever holds both the file and the key holds the secrets, and a
   * credential revoked while the agent is down stays usable from the cache until `maxStale`.
   *
   * @example
   * ```ts
   * import { Keyward } from "@keyward/sdk";
   *
   * const kw = await Keyward.connect({ url: "http://127.0.0.1:8080", token: process.env.KEYWARD_AGENT_KEY! });
   * const openaiKey = kw.get("openai");
   * kw.on("change", ({ name, version }) => console.log(`${name} rotated to v${version}`));
   * ```
   *
   * @example With no static secret: the pod's projected service-account token, which Keyward's
   * `trusted_workloads` map to this agent (re-read at each renewal, as Kubernetes rotates it).
   * ```ts
   * import { readFile } from "node:fs/promises";
   *
   * const kw = await Keyward.connect({
   *   url: process.env.KEYWARD_URL!,
   *   workloadToken: () => readFile("/var/run/secrets/keyward/token", "utf8"),
   * });
   * ```
   */
  static async connect(options: ConnectOptions): Promise<Keyward> {
    const kw = new Keyward(resolveOptions(options));
    const { signal } = kw.#opts;
    if (signal !== undefined) {
      const onAbort = () => void kw.close();
      signal.addEventListener("abort", onAbort, { once: true });
      kw.#detachSignal = () => signal.removeEventListener("abort", onAbort);
      if (signal.aborted) onAbort();
    }
    try {
      await kw.#load();
    } catch (err) {
      await kw.close();
      throw err;
    }
    if (kw.#state === CLOSED) throw new KeywardError("closed", "Keyward.connect was aborted");
    kw.#freshness.start();
    return kw;
  }

  async #load(): Promise<void> {
    const { clock, cache } = this.#opts;
    try {
      const page = await this.#api.fetchCredentials({});
      this.#set.load(page!);
      this.#staleness.start(clock.now());
      this.#cache?.request();
      return;
    } catch (err) {
      if (this.#closing.signal.aborted) throw new KeywardError("closed", "Keyward.connect was aborted");
      if (cache === undefined || !isOutage(err)) throw err;
      const cached = await readCache(cache.file, cache.key, this.#opts.url);
      if (cached === undefined || this.#staleness.tooOld(cached.savedAt)) {
        const why = cached === undefined ? "no disk cache yet" : "the disk cache is older than maxStale";
        const { code, status } = err as KeywardError;
        throw new KeywardError(code, `${(err as Error).message} (${why})`, { status, cause: err });
      }
      this.#set.load(cached);
      this.#cacheSavedAt = cached.savedAt;
      this.#staleness.start(cached.savedAt);
    }
  }

  /**
   * The value of a credential, from memory: no I/O, no promise, no allocation.
   *
   * @throws {@link UnknownCredentialError} for a name the agent cannot read.
   * @throws {@link StaleCredentialError} when the server has been unreachable for longer than `maxStale`.
   * @throws {@link KeywardError} `credential_expired` for a token provider's token past its expiry
   *   (Keyward refreshes tokens ahead of time; use {@link Keyward.tokenProvider} to wait for the new one).
   * @example
   * ```ts
   * const client = new OpenAI({ apiKey: kw.get("openai") });
   * ```
   */
  get(name: string): string {
    if (this.#state !== OK) this.#throwState();
    const entry = this.#entries.get(name);
    if (entry === undefined) throw new UnknownCredentialError(name);
    // Only token providers' values expire, so only they pay for reading the clock.
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#opts.clock.now()) throw expired(name);
    return entry.value;
  }

  /**
   * A deep copy of `obj` with every `${credentials.<name>}` placeholder replaced by that value,
   * also inside longer strings. Arrays and plain objects are copied; other objects are kept as
   * they are. Throws like {@link Keyward.get}, so nothing half-resolved is returned.
   *
   * @example
   * ```ts
   * const config = kw.resolve({ db: { url: "postgres://app:${credentials.db_password}@db/app" } });
   * ```
   */
  resolve<T>(obj: T): T {
    return resolvePlaceholders(obj, (name) => this.get(name));
  }

  /**
   * Listens for `change` ({name, version}), `removed` ({name}) or `error` (a {@link KeywardError}
   * from background work; the client keeps retrying).
   *
   * @example
   * ```ts
   * kw.on("change", ({ name }) => { if (name === "openai") client = new OpenAI({ apiKey: kw.get("openai") }); });
   * kw.on("error", (err) => log.warn({ code: err.code }, err.message));
   * ```
   */
  on<E extends keyof KeywardEvents>(event: E, listener: Listener<E>): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /**
   * Removes a listener added with {@link Keyward.on}.
   *
   * @example
   * ```ts
   * kw.off("change", onChange);
   * ```
   */
  off<E extends keyof KeywardEvents>(event: E, listener: Listener<E>): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /**
   * A function answering the current access token of an `oauth2_client_credentials` credential,
   * for clients that take a token callback, such as `openai`'s `AzureOpenAI`. Near expiry it asks
   * Keyward for a newer token first; it never answers an expired one (`credential_expired`).
   *
   * @example
   * ```ts
   * import { AzureOpenAI } from "openai";
   * const client = new AzureOpenAI({ endpoint, apiVersion, azureADTokenProvider: kw.tokenProvider("azure_openai") });
   * ```
   */
  tokenProvider(name: string): () => Promise<string> {
    const current = createTokenGetter(this.#tokenSource(), name);
    return async () => (await current()).value;
  }

  /**
   * An Azure-style `TokenCredential` (`getToken(scopes)` → `{token, expiresOnTimestamp}`) over
   * a credential's current value. The scopes are ignored: the credential's own configuration in
   * Keyward decides what its token is for.
   *
   * @example
   * ```ts
   * const credential = kw.tokenCredential("azure_openai");
   * const { token, expiresOnTimestamp } = await credential.getToken("https://cognitiveservices.azure.com/.default");
   * ```
   */
  tokenCredential(name: string): TokenCredential {
    const current = createTokenGetter(this.#tokenSource(), name);
    const { clock } = this.#opts;
    return {
      async getToken(): Promise<AccessToken> {
        return toAccessToken(await current(), clock.now());
      },
    };
  }

  /**
   * A token for a downstream agent on behalf of the caller whose token this agent received
   * (RFC 8693 token exchange, SPEC §5), with this client's token as the actor token.
   *
   * @example
   * ```ts
   * const { accessToken } = await kw.exchange({ subjectToken: callerJwt, audience: "billing", scope: "read:invoices" });
   * ```
   */
  async exchange(req: {
    subjectToken: string;
    audience: string;
    scope?: string | readonly string[];
  }): Promise<ExchangedToken> {
    const { url, fetch } = this.#opts;
    return exchangeToken({
      url: url.href.replace(/\/$/, ""),
      actorToken: await this.#opts.token(),
      subjectToken: req.subjectToken,
      audience: req.audience,
      ...(req.scope === undefined ? {} : { scope: req.scope }),
      fetch,
      maxResponseBytes: this.#opts.limits.responseBytes,
    });
  }

  /**
   * Tools that act for a user with that user's own credentials: `kw.tools.withUserCredentials(tool,
   * {names, inject})` (SPEC §7). Their requests use this client's URL, token and transport; their
   * audit failures arrive as `error` events unless the tool has an `onAuditError`.
   *
   * @example
   * ```ts
   * const listFunctions = kw.tools.withUserCredentials(impl, { names: ["aliyun_ak"], inject: "env" });
   * await listFunctions({ region: "eu" }, { userToken: forwardedJwt });
   * ```
   */
  get tools(): KeywardTools {
    this.#tools ??= createTools(
      createToolsApi({
        url: this.#opts.url,
        token: this.#opts.token,
        fetch: this.#opts.fetch,
        requestTimeoutMs: this.#opts.requestTimeoutMs,
        maxResponseBytes: this.#opts.limits.responseBytes,
        closed: this.#closing.signal,
      }),
      this.#opts.token,
      (err) => this.#emitter.emit("error", err),
    );
    return this.#tools;
  }

  /**
   * Stops all background work (event stream, polling, timers), waits for a pending disk-cache
   * write and for tool-call audit records in flight, and drops the values from memory. `get` then
   * throws `closed`. Safe to call twice.
   *
   * @example
   * ```ts
   * process.once("SIGTERM", () => void kw.close());
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#state = CLOSED;
      this.#detachSignal?.();
      // Tool-call audit records still in flight are delivered (or reported) first.
      await this.#tools?.close();
      this.#closing.abort();
      this.#staleness.stop();
      await this.#freshness.close();
      await this.#cache?.flush();
      this.#set.clear();
      this.#emitter.clear();
    })();
    return this.#closed;
  }

  #contact(): void {
    this.#staleness.contact();
    if (this.#cache !== undefined && this.#staleness.lastContact - this.#cacheSavedAt >= CACHE_TOUCH_MS) {
      this.#cacheSavedAt = this.#staleness.lastContact;
      this.#cache.request();
    }
  }

  #tokenSource() {
    return {
      entry: (name: string) => {
        if (this.#state !== OK) this.#throwState();
        const entry = this.#entries.get(name);
        if (entry === undefined) throw new UnknownCredentialError(name);
        return entry;
      },
      refresh: () => this.#freshness.sync(),
      now: () => this.#opts.clock.now(),
    };
  }

  #staleError(): StaleCredentialError {
    return new StaleCredentialError(this.#staleness.lastContact, this.#opts.maxStale);
  }

  #throwState(): never {
    if (this.#state === STALE) throw this.#staleError();
    throw new KeywardError("closed", "the Keyward client is closed");
  }
}
