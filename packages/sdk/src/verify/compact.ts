import { createBoundedCache } from "../cache/bounded-cache.js";
import { type CheckedHeader, checkHeader, decodeSignature, splitCompact } from "../jose/compact.js";
import { MAX_TOKEN_CHARS } from "../jose/failure.js";
import { invalid, refusal } from "./errors.js";

/** Signature algorithms a verifier may accept. ES256 is Keyward's; EdDSA only when configured. */
export type VerifyAlgorithm = "ES256" | "EdDSA";

/** A compact JWS split and its protected header checked; the signature is not checked yet. */
export interface ParsedCompact {
  alg: VerifyAlgorithm;
  kid: string;
  /** `header.payload`, the bytes the signature covers. */
  signingInput: string;
  payloadSegment: string;
  signature: Buffer;
}

export { MAX_TOKEN_CHARS };

const OPAQUE_CREDENTIAL = /^kw[kra]_/;
const ACCESS_TOKEN_TYP = { accept: ["at+jwt"] };

/** Accepted headers kept per parser; cleared when full, so made-up kids cannot grow it. */
const MAX_ACCEPTED_HEADERS = 64;

/**
 * A parser for one verifier: the JOSE core's compact parsing and header policy (pinned
 * algorithms, `typ: at+jwt`, forbidden headers), failures thrown as `TokenVerificationError`.
 * Every token signed with one key has the same encoded header, so a header that passed is
 * remembered by its encoded form and not parsed again; only accepted headers are kept, and the
 * checks depend on nothing but `algorithms`, fixed for the parser's life.
 */
export function createCompactParser(algorithms: ReadonlySet<VerifyAlgorithm>): (token: unknown) => ParsedCompact {
  // A flood of distinct (accepted) headers evicts the least recently seen one, not the issuer's own.
  const acceptedHeaders = createBoundedCache<string, CheckedHeader>({ max: MAX_ACCEPTED_HEADERS });
  const policy = { algorithms, typ: ACCESS_TOKEN_TYP };
  return (token) => {
    if (typeof token === "string" && OPAQUE_CREDENTIAL.test(token)) {
      throw invalid("an API key, refresh token or admin token is not an access token");
    }
    const split = splitCompact(token, MAX_TOKEN_CHARS);
    if (!split.ok) throw refusal(split);
    const { headerSegment, payloadSegment, signatureSegment, signingInput } = split.value;

    let header = acceptedHeaders.get(headerSegment);
    if (header === undefined) {
      const checked = checkHeader(headerSegment, policy);
      if (!checked.ok) throw refusal(checked);
      header = checked.value;
      acceptedHeaders.set(headerSegment, header);
    }

    const signature = decodeSignature(header.alg, signatureSegment);
    if (!signature.ok) throw refusal(signature);
    return {
      alg: header.alg as VerifyAlgorithm,
      kid: header.kid,
      signingInput,
      payloadSegment,
      signature: signature.value,
    };
  };
}
