import { z } from "zod";

/**
 * Timeouts of the listening server (docs/operations.md, "HTTP timeouts"). Node applies
 * `request_timeout_ms` to receiving a request (headers and body), never to the response, so a
 * long SSE or streamed answer is not cut by it; a client uploading slower than this is.
 */
export const httpSchema = z
  .object({
    /** A client must finish sending its headers within this (slowloris). */
    // 60 s, as Node's and nginx's defaults: at 10 s a replica under CPU pressure (1,000 MCP calls
    // on two cores) answered 408 to well-behaved clients whose first bytes waited in line.
    headers_timeout_ms: z.coerce.number().int().min(100).max(600_000).default(60_000),
    /** A client must finish sending its whole request (headers and body) within this. */
    request_timeout_ms: z.coerce.number().int().min(100).max(86_400_000).default(120_000),
    /** An idle keep-alive connection is closed after this (above common load balancers' 60 s). */
    keep_alive_timeout_ms: z.coerce.number().int().min(100).max(600_000).default(65_000),
  })
  .strict()
  .refine((h) => h.headers_timeout_ms <= h.request_timeout_ms, {
    path: ["headers_timeout_ms"],
    message: "http.headers_timeout_ms must not exceed http.request_timeout_ms",
  });
export type HttpConfig = z.infer<typeof httpSchema>;
