import { readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where the console's build lives and what its files are. The default is the console package's
 * `dist/` beside the server package: `src/console/` in tests and `dist/console/` once built are
 * both three folders below `packages/`.
 */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL("../../../console/dist/", import.meta.url));

/** Content types of what a Vite build emits; anything else is served as opaque bytes. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".txt": "text/plain; charset=utf-8",
};

export function contentType(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
}

/**
 * A regular file's bytes, or undefined when there is none at `relative` below `dir` (absent, a
 * folder, unreadable). `relative` must already have passed the path-safety check: this joins it
 * as is.
 */
export async function readConsoleFile(dir: string, relative: string): Promise<Buffer | undefined> {
  const file = join(dir, relative);
  try {
    if (!(await stat(file)).isFile()) return undefined;
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR" || code === "EACCES" || code === "ENAMETOOLONG") {
      return undefined;
    }
    throw err;
  }
}
