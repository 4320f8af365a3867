import { KeywardError } from "../errors.js";
import { readBoundedJson } from "../http/bounded-body.js";
import { unreachable } from "../http/http-errors.js";
import type { Clock, FetchLike } from "./options.js";

/** RFC 7523 §2.1: the platform token is presented as the `assertion` of this grant. */
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** Renew once this fraction of the token's life has passed (Kubernetes rotates its own at 80 % too). */
const RENEW_AT = 0.8;
/** A token this close to its expiry is not handed out, even while renewal fails. */
const EXPIRY_MARGIN_MS = 5_000;

export interface WorkloadTokenOptions {
  /** Keyward's base URL, ending in `/`. */
  url: URL;
  /** Reads the platform token, e.g. the projected service-account token file; called on each renewal. */
  read: () => string | Promise<string>;
  fetch: FetchLike;
  clock: Clock;
  timeoutMs: number;
  /** Largest `/oauth/token` answer read, in bytes. */
  maxBytes: number;
}

interface Held {
  token: string;
  renewAt: number;
  expiresAt: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The agent's access token from its platform identity: the platform token (re-read each time, as
 * Kubernetes rotates the file) is exchanged at `/oauth/token` (RFC 7523 jwt-bearer), the answer
 * kept until 80 % of its life, then renewed on the next request. Concurrent callers share one
 * exchange. While a renewal fails the current token is still used until shortly before it expires;
 * then the failure is thrown (the client's retries and staleness rules apply as for any outage).
 */
export function workloadTokenSource(o: WorkloadTokenOptions): () => Promise<string> {
  const endpoint = new URL("oauth/token", o.url);
  let held: Held | undefined;
  let inFlight: Promise<Held> | undefined;

  async function exchange(): Promise<Held> {
    const assertion = (await o.read()).trim();
    if (assertion === "") throw new KeywardError("invalid_grant", "the workload token is empty");
    const started = o.clock.now();
    let res: Response;
    try {
      res = await o.fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (err) {
      throw unreachable(o.url, err);
    }
    const limit = { what: "the answer of POST /oauth/token", limit: "responseBytes", maxBytes: o.maxBytes };
    const body: unknown = await readBoundedJson(res, limit).catch((err: unknown) => {
      if (err instanceof KeywardError) throw err;
      return undefined;
    });
    if (!res.ok) {
      // RFC 6749 §5.2 body; the server's description never holds the token.
      const code = isObject(body) && typeof body.error === "string" ? body.error : `http_${res.status}`;
      const why = isObject(body) && typeof body.error_description === "string" ? body.error_description : "";
      throw new KeywardError(code, `Keyward refused the workload token${why ? `: ${why}` : ""}`, {
        status: res.status,
      });
    }
    if (!isObject(body) || typeof body.access_token !== "string" || typeof body.expires_in !== "number") {
      throw new KeywardError("invalid_response", "POST /oauth/token answered without access_token and expires_in");
    }
    const lifeMs = Math.max(0, body.expires_in) * 1000;
    return { token: body.access_token, renewAt: started + lifeMs * RENEW_AT, expiresAt: started + lifeMs };
  }

  return async function accessToken(): Promise<string> {
    const now = o.clock.now();
    if (held !== undefined && now < held.renewAt) return held.token;
    inFlight ??= exchange().finally(() => {
      inFlight = undefined;
    });
    try {
      held = await inFlight;
      return held.token;
    } catch (err) {
      if (held !== undefined && o.clock.now() < held.expiresAt - EXPIRY_MARGIN_MS) return held.token;
      throw err;
    }
  };
}
