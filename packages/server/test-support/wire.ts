import type { ErrorCode } from "../src/errors.js";

/**
 * The JSON bodies Keyward answers (SPEC.md), as tests read them: a test names the answer it
 * expects with `readJson<ApiErrorBody>(res)` and the compiler checks every field it then touches.
 * Written from the spec by hand, not derived from the services' types, so a field renamed in a
 * service fails the tests instead of silently following the rename.
 */

/** §4: every API error. */
export interface ApiErrorBody {
  error: { code: ErrorCode; message: string; request_id: string };
}

/**
 * What `/oauth/token` and `/v1/auth/token` answer, read before the test has looked at the status:
 * the success fields (RFC 6749 §5.1, RFC 8693 §2.2) and the error fields (§5.2) side by side.
 * Each test asserts the status or the fields it expects, so a field the answer lacks fails that
 * assertion (undefined is not the expected value) rather than passing unseen.
 */
export interface TokenEndpointBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  refresh_token: string;
  issued_token_type: string;
  error: string;
  error_description: string;
}

/** §6 `GET /v1/credentials`. */
export interface CredentialsBody {
  credentials: Record<string, { value: string; version: number; expires_at?: string }>;
  removed: string[];
  cursor: string;
}

/** The parsed JSON body of `res`, typed as the answer the test expects (nothing is validated). */
export async function readJson<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}
