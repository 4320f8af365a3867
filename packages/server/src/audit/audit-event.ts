import { base64url } from "@keyward/sdk/jose";
import { invalidRequest } from "../errors.js";
import { canonicalJson } from "./audit-chain.js";
import { type AuditField, MAX_DETAILS_CHARS, scrubDetails, scrubField } from "./audit-scrub.js";
import type { AuditEventInput, AuditOutcome } from "./audit-sink.js";
import type { AuditRow, AuditRowInput } from "./audit-store.js";

/** An audit event as the admin API shows it (SPEC §9). */
export interface AuditEvent {
  seq: number;
  /** RFC 3339 */
  time: string;
  actor: string;
  action: string;
  target?: string;
  outcome: AuditOutcome;
  code?: string;
  ip?: string;
  request_id?: string;
  details?: Record<string, unknown>;
}

/** Scrubs and flattens an event into the row the store hashes and writes. */
export function toRow(e: AuditEventInput, time: number): AuditRowInput {
  let details: string | null = null;
  if (e.details !== undefined) {
    details = canonicalJson(scrubDetails(e.details));
    if (details.length > MAX_DETAILS_CHARS) details = canonicalJson({ truncated: true, chars: details.length });
  }
  return {
    time,
    actor: scrubField("actor", e.actor),
    action: scrubField("action", e.action),
    target: optional("target", e.target),
    outcome: e.outcome,
    code: optional("code", e.code),
    ip: optional("ip", e.ip),
    request_id: optional("request_id", e.requestId),
    details,
  };
}

function optional(field: AuditField, s: string | undefined): string | null {
  return s === undefined ? null : scrubField(field, s);
}

/** Built field by field: a new column never reaches a response by accident. */
export function toEvent(row: AuditRow): AuditEvent {
  const ev: AuditEvent = {
    seq: row.seq,
    time: new Date(row.time).toISOString(),
    actor: row.actor,
    action: row.action,
    outcome: row.outcome as AuditOutcome,
  };
  if (row.target !== null) ev.target = row.target;
  if (row.code !== null) ev.code = row.code;
  if (row.ip !== null) ev.ip = row.ip;
  if (row.request_id !== null) ev.request_id = row.request_id;
  const details = parseDetails(row.details);
  if (details) ev.details = details;
  return ev;
}

/** A row altered by hand may hold anything; listing stays up and verify() reports the damage. */
function parseDetails(text: string | null): Record<string, unknown> | undefined {
  if (text === null) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The list cursor is the last seq a page showed, opaque to clients so its form may change. */
export function encodeCursor(seq: number): string {
  return base64url.encode(`a${seq}`);
}

export function decodeCursor(cursor: string): number {
  const m = /^a([1-9][0-9]{0,14})$/.exec(base64url.decode(cursor)?.toString("utf8") ?? "");
  if (!m) throw invalidRequest("cursor is not valid");
  return Number(m[1]);
}
