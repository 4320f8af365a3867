import type { ServerResponse } from "node:http";
import { codeToStatus, type ErrorCode } from "../errors.js";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(payload);
}

export function errorBody(code: ErrorCode, message: string, requestId: string): unknown {
  return { error: { code, message, request_id: requestId } };
}

export function sendError(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  requestId: string,
  headers?: Record<string, string>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, codeToStatus(code), errorBody(code, message, requestId), { "x-request-id": requestId, ...headers });
}
