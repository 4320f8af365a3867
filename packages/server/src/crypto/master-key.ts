import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { MASTER_KEY_BYTES } from "./keyring.js";

export const MASTER_KEY_FILE = "master.key";

export interface LoadMasterKeyOptions {
  /** The value of KEYWARD_MASTER_KEY (base64 of 32 bytes), or undefined when unset. */
  fromEnv: string | undefined;
  dataDir: string;
  /** True with PostgreSQL: the key must not sit beside the data, so no file is generated. */
  requireExplicit: boolean;
  warn: (msg: string) => void;
}

/**
 * Finds the master key: KEYWARD_MASTER_KEY when set, else `<dataDir>/master.key`, generated on
 * first start. Errors name the setting or file and say why, never the value.
 */
export function loadMasterKey(opts: LoadMasterKeyOptions): Buffer {
  if (opts.fromEnv !== undefined) return decodeKey(opts.fromEnv, "KEYWARD_MASTER_KEY");
  if (opts.requireExplicit) {
    throw new Error(
      "KEYWARD_MASTER_KEY is required with PostgreSQL: set it to base64 of 32 random bytes " +
        "(e.g. `openssl rand -base64 32`) and keep it outside the database",
    );
  }
  const path = join(opts.dataDir, MASTER_KEY_FILE);
  const existing = readKeyFile(path, opts.warn);
  if (existing) return existing;
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const created = createKeyFile(path);
  if (created) {
    opts.warn(
      `generated a new master key in ${path}: back it up now (without it no stored secret can be ` +
        "decrypted), or move its content to KEYWARD_MASTER_KEY and delete the file",
    );
    return created;
  }
  // Another process created the file between our read and our create: use its key.
  const raced = readKeyFile(path, opts.warn);
  if (!raced) throw new Error(`master key file ${path} vanished while being created`);
  return raced;
}

function decodeKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (trimmed === "") throw new Error(`${source} is empty: expected base64 of ${MASTER_KEY_BYTES} bytes`);
  // Both alphabets are accepted; Buffer's decoder silently skips other characters, so check first.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new Error(`${source} is not valid base64: expected base64 of ${MASTER_KEY_BYTES} bytes`);
  }
  const key = Buffer.from(trimmed, "base64");
  if (key.length !== MASTER_KEY_BYTES) {
    throw new Error(
      `${source} must be base64 of exactly ${MASTER_KEY_BYTES} bytes, but decodes to ${key.length} bytes ` +
        "(generate one with `openssl rand -base64 32`)",
    );
  }
  return key;
}

/** Reads the key file, or undefined when it does not exist. */
function readKeyFile(path: string, warn: (msg: string) => void): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    // Checked on the open descriptor, so the mode is that of the file actually read.
    const mode = fstatSync(fd).mode & 0o777;
    if (process.platform !== "win32" && (mode & 0o077) !== 0) {
      warn(`master key file ${path} is readable by other users (mode ${mode.toString(8)}): run chmod 600 ${path}`);
    }
    return decodeKey(readFileSync(fd, "utf8"), `master key file ${path}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a new key to a temporary file, then publishes it with link(2), which, unlike rename(2),
 * fails when the target exists. Two processes racing thus end with one key file, and no reader
 * ever sees a half-written one. Returns undefined when another process won.
 */
function createKeyFile(path: string): Buffer | undefined {
  const key = randomBytes(MASTER_KEY_BYTES);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    try {
      fchmodSync(fd, 0o600); // the umask may have narrowed the mode further; make it exact
      writeSync(fd, `${key.toString("base64")}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return undefined;
      throw err;
    }
    syncDir(dirname(path));
    return key;
  } finally {
    unlinkSync(tmp);
  }
}

/** Makes the new directory entry durable; not supported everywhere (Windows), hence best effort. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}
