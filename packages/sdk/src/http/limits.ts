/**
 * How much the SDK reads from a server before it stops: a server that is broken, hostile or
 * impersonated (a proxy, a DNS mistake) must not be able to grow an agent's memory without bound.
 * Each default sits far above anything Keyward sends, so only a fault ever meets it.
 */
export interface ResponseLimits {
  /** Largest body of `GET /v1/credentials`, in bytes (the whole granted set). Default 16 MiB. */
  credentialsBytes?: number;
  /**
   * Largest body of any other answer (error bodies, `/v1/tools/credentials`, `/v1/audit/events`,
   * `/oauth/token`), in bytes. Default 1 MiB.
   */
  responseBytes?: number;
  /** Longest line of the event stream, in characters. Default 64 Ki (65,536). */
  sseLineChars?: number;
  /** Largest event of the event stream (all its field lines together), in characters. Default 1 Mi. */
  sseEventChars?: number;
  /** Most field lines in one event of the event stream (Keyward sends three). Default 1,000. */
  sseEventLines?: number;
}

export type ResolvedLimits = Required<ResponseLimits>;

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  credentialsBytes: 16 * MiB,
  responseBytes: MiB,
  sseLineChars: 64 * 1024,
  sseEventChars: MiB,
  sseEventLines: 1000,
});

/** The limits with defaults filled in; a value that is not a positive integer fails at start. */
export function resolveLimits(given: ResponseLimits | undefined): ResolvedLimits {
  if (given === undefined) return { ...DEFAULT_LIMITS };
  if (given === null || typeof given !== "object") throw new TypeError("Keyward.connect: limits must be an object");
  const out = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(DEFAULT_LIMITS) as (keyof ResolvedLimits)[]) {
    const value = given[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`Keyward.connect: limits.${name} must be a positive integer`);
    }
    out[name] = value;
  }
  return out;
}
