import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { KeywardError } from "../errors.js";
import type { CredentialEntry } from "./credentials-api.js";

/*
 * The on-disk cache: `KWC1` | 12-byte IV | 16-byte GCM tag | AES-256-GCM ciphertext of a JSON
 * document. The additional data binds the file to the server URL, so a cache written for one
 * Keyward is never loaded against another. A fresh random IV per write: with a 96-bit IV the
 * collision bound stays far away for any number of writes an agent makes. A wrong key, a flipped
 * bit or a truncated file fails the tag check as a whole: nothing partial is ever loaded.
 */
const MAGIC = Buffer.from("KWC1");
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = MAGIC.length + IV_BYTES + TAG_BYTES;

export interface CacheSnapshot {
  /** Epoch ms of the last successful contact with the server when written. */
  savedAt: number;
  cursor: string;
  etag: string | undefined;
  credentials: ReadonlyMap<string, CredentialEntry>;
}

const aad = (url: URL) => Buffer.from(`keyward-sdk-cache-v1\n${url.href}`);

export function encodeCache(s: CacheSnapshot, key: Buffer, url: URL): Buffer {
  // Null prototype: on a plain object `credentials["__proto__"] = …` would set the prototype
  // instead of a property, and a credential of that name would vanish from the file.
  const credentials: Record<string, { value: string; version: number; expires_at?: number }> = Object.create(null);
  for (const [name, e] of s.credentials) {
    credentials[name] =
      e.expiresAt === undefined
        ? { value: e.value, version: e.version }
        : { value: e.value, version: e.version, expires_at: e.expiresAt };
  }
  const plain = Buffer.from(JSON.stringify({ saved_at: s.savedAt, cursor: s.cursor, etag: s.etag, credentials }));
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv).setAAD(aad(url));
  const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), sealed]);
}

function unreadable(file: string, why: string, cause?: unknown): KeywardError {
  return new KeywardError("cache_unreadable", `disk cache ${file} cannot be used: ${why}`, { cause });
}

export function decodeCache(bytes: Buffer, key: Buffer, url: URL, file: string): CacheSnapshot {
  if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw unreadable(file, "not a Keyward cache file");
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(4, 4 + IV_BYTES)).setAAD(aad(url));
    decipher.setAuthTag(bytes.subarray(4 + IV_BYTES, HEADER));
    plain = Buffer.concat([decipher.update(bytes.subarray(HEADER)), decipher.final()]);
  } catch (err) {
    throw unreadable(file, "wrong cacheKey, another server URL, or a damaged file", err);
  }
  try {
    // JSON.parse makes `__proto__` an own data property, so Object.entries sees every name and
    // the Map holds it like any other; nothing here assigns a parsed name onto a plain object.
    const doc = JSON.parse(plain.toString("utf8"));
    const credentials = new Map<string, CredentialEntry>();
    for (const [name, c] of Object.entries<{ value: unknown; version: unknown; expires_at?: unknown }>(
      doc.credentials,
    )) {
      if (typeof c?.value !== "string" || typeof c.version !== "number") throw new Error("malformed entry");
      const expiresAt = typeof c.expires_at === "number" ? c.expires_at : undefined;
      credentials.set(name, { value: c.value, version: c.version, expiresAt });
    }
    if (typeof doc.saved_at !== "number" || typeof doc.cursor !== "string") throw new Error("missing fields");
    return { savedAt: doc.saved_at, cursor: doc.cursor, etag: doc.etag ?? undefined, credentials };
  } catch (err) {
    throw unreadable(file, "unexpected content", err);
  } finally {
    plain.fill(0);
  }
}

/** The snapshot in `file`, or undefined when there is none. Throws `cache_unreadable` otherwise. */
export async function readCache(file: string, key: Buffer, url: URL): Promise<CacheSnapshot | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw unreadable(file, (err as Error).message, err);
  }
  return decodeCache(bytes, key, url, file);
}

/** Writes to a temp file (mode 0600) in the same folder, fsyncs it, then renames it over `file`. */
async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Writes the latest snapshot after each change, one write at a time: requests made while a write
 * runs collapse into one more write of the then-current state, so an older state never lands last.
 */
export class CacheWriter {
  #dirty = false;
  #running: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    private readonly key: Buffer,
    private readonly url: URL,
    private readonly snapshot: () => CacheSnapshot,
    private readonly onError: (err: KeywardError) => void,
  ) {}

  request(): void {
    this.#dirty = true;
    this.#running ??= this.#loop();
  }

  /** Resolves when no write is pending. */
  flush(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  async #loop(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      try {
        await writeAtomically(this.file, encodeCache(this.snapshot(), this.key, this.url));
      } catch (err) {
        this.onError(
          new KeywardError("cache_write_failed", `disk cache ${this.file} not written: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      }
    }
    this.#running = undefined;
  }
}
