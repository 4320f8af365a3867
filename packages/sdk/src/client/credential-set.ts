import type { CredentialEntry, CredentialsPage } from "./credentials-api.js";
import type { CacheSnapshot } from "./disk-cache.js";
import type { Emitter } from "./emitter.js";

/**
 * The values held in memory and the position in the server's change feed (cursor, ETag). All
 * changes go through here, so `change`/`removed` are emitted exactly when a value differs, and
 * only after the whole page is applied (a listener sees a consistent set).
 */
export class CredentialSet {
  readonly entries = new Map<string, CredentialEntry>();
  cursor: string | undefined;
  etag: string | undefined;

  constructor(private readonly emitter: Emitter) {}

  /** Applies a page; `full` replaces the whole set (names missing from it are removed). */
  apply(page: CredentialsPage, full: boolean): boolean {
    const changed: { name: string; version: number }[] = [];
    const removed: string[] = [];
    if (full) {
      for (const name of this.entries.keys()) {
        if (!page.credentials.has(name)) removed.push(name);
      }
    }
    for (const name of page.removed) {
      if (this.entries.has(name) && !page.credentials.has(name)) removed.push(name);
    }
    for (const name of removed) this.entries.delete(name);
    for (const [name, next] of page.credentials) {
      const prev = this.entries.get(name);
      if (prev?.version === next.version && prev.value === next.value && prev.expiresAt === next.expiresAt) continue;
      this.entries.set(name, next);
      changed.push({ name, version: next.version });
    }
    this.cursor = page.cursor;
    this.etag = page.etag;
    for (const name of removed) this.emitter.emit("removed", { name });
    for (const change of changed) this.emitter.emit("change", change);
    return changed.length > 0 || removed.length > 0;
  }

  /** Loads the first set (from the server or the disk cache): no events, nobody is listening yet. */
  load(s: { credentials: ReadonlyMap<string, CredentialEntry>; cursor: string; etag: string | undefined }): void {
    this.entries.clear();
    for (const [name, entry] of s.credentials) this.entries.set(name, entry);
    this.cursor = s.cursor;
    this.etag = s.etag;
  }

  remove(name: string): void {
    if (this.entries.delete(name)) this.emitter.emit("removed", { name });
  }

  snapshot(savedAt: number): CacheSnapshot {
    return { savedAt, cursor: this.cursor ?? "", etag: this.etag, credentials: this.entries };
  }

  clear(): void {
    this.entries.clear();
    this.cursor = undefined;
    this.etag = undefined;
  }
}
