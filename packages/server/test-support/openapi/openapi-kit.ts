import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

/** The parts of an OpenAPI 3.1 document the tests read. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  security: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; required: boolean }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>;
}

export interface Located {
  method: string;
  path: string;
  operation: OpenApiOperation;
}

export function operationsOf(doc: OpenApiDocument): Located[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method, path, operation })),
  );
}

/** `/admin/v1/agents/{name}` matches `/admin/v1/agents/x`; the most literal segments win. */
function templateMatches(template: string, path: string): boolean {
  const t = template.split("/");
  const p = path.split("/");
  return t.length === p.length && t.every((seg, i) => seg.startsWith("{") || seg === p[i]);
}

/**
 * Checks real responses against the served document: the status must be documented for that
 * operation and the body must match that status's schema (JSON Schema 2020-12, formats checked).
 * Every (operation, status) pair checked is remembered, so a test can demand that each one
 * documented was seen.
 */
export class Conformance {
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly covered = new Set<string>();

  constructor(private readonly doc: OpenApiDocument) {
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(this.ajv);
    this.ajv.addSchema({ $id: "doc", components: doc.components });
  }

  locate(method: string, path: string): Located {
    const bare = path.split("?")[0] as string;
    const candidates = operationsOf(this.doc).filter(
      (o) => o.method === method.toLowerCase() && templateMatches(o.path, bare),
    );
    candidates.sort((a, b) => literalCount(b.path) - literalCount(a.path));
    const found = candidates[0];
    if (!found) throw new Error(`${method} ${bare} is not in the document`);
    return found;
  }

  /** Validates one response; returns the parsed body. */
  async check(method: string, path: string, res: Response): Promise<unknown> {
    const { operation } = this.locate(method, path);
    const status = String(res.status);
    const documented = operation.responses[status];
    if (!documented) {
      const text = await res.text();
      throw new Error(`${operation.operationId} answered ${status}, which is not documented: ${text.slice(0, 300)}`);
    }
    this.covered.add(`${operation.operationId} ${status}`);
    const [mediaType, media] = Object.entries(documented.content ?? {})[0] ?? [];
    if (mediaType === "text/event-stream") {
      // A stream does not end: its type is what can be checked; the caller closes it.
      const contentType = res.headers.get("content-type") ?? "";
      if (!contentType.startsWith(mediaType)) throw new Error(`${operation.operationId} ${status}: ${contentType}`);
      return undefined;
    }
    const text = await res.text();
    if (mediaType === undefined) {
      if (text !== "") throw new Error(`${operation.operationId} ${status} is documented without a body: ${text}`);
      return undefined;
    }
    const contentType = res.headers.get("content-type") ?? "";
    if (!contentType.startsWith(mediaType)) {
      throw new Error(`${operation.operationId} ${status}: content-type ${contentType}, documented ${mediaType}`);
    }
    if (mediaType !== "application/json") return text;
    const body: unknown = JSON.parse(text);
    if (media?.schema) {
      const key = `${operation.operationId} ${status}`;
      const validate = this.compiled.get(key) ?? this.ajv.compile(rebase(media.schema));
      this.compiled.set(key, validate);
      if (!validate(body)) {
        throw new Error(
          `${key}: the body does not match the document: ${this.ajv.errorsText(validate.errors)}\n${text}`,
        );
      }
    }
    return body;
  }

  /** Documented (operation, status) pairs no check has seen. */
  uncovered(): string[] {
    return operationsOf(this.doc)
      .flatMap((o) => Object.keys(o.operation.responses).map((s) => `${o.operation.operationId} ${s}`))
      .filter((pair) => !this.covered.has(pair));
  }
}

function literalCount(template: string): number {
  return template.split("/").filter((s) => !s.startsWith("{")).length;
}

/** Component references point into the document registered as `doc`. */
export function rebase(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
}
