import type { CredentialDetail } from "../types";
import type { Field } from "../ui/FormDialog";
import { CREDENTIAL_NAME, isHttpUrl, matches } from "../ui/validate";

/**
 * The Set credential / New version form: a static value, or a token provider
 * (`oauth2_client_credentials`: Keyward fetches and refreshes the access token), and optional
 * egress settings. Values and client secrets are write-only: password inputs, never prefilled,
 * never read back (the API has no way to), sent once and dropped with the form.
 */

const PROVIDER = "oauth2_client_credentials";
const PRINTABLE = /^[\x20-\x7e]+$/;
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

const tokenUrlProblem = (v: string) => {
  const u = new URL(v);
  const loopback = u.hostname === "localhost" || u.hostname === "[::1]" || /^127\./.test(u.hostname);
  if (u.protocol === "https:" || (u.protocol === "http:" && loopback)) return undefined;
  return "Must be https (http only on localhost): the endpoint receives the client secret.";
};

const baseUrlProblem = (v: string) => {
  if (!isHttpUrl(v)) return undefined; // the url type's own message speaks first
  const u = new URL(v);
  if (u.username || u.password) return "Must not contain a user name or password.";
  if (v.includes("?") || v.includes("#")) return "Must not have a query or fragment.";
  return undefined;
};

export function credentialFields(values: Record<string, string>, existing?: CredentialDetail): Field[] {
  const type = values.type ?? existing?.type ?? "static";
  const fields: Field[] = [];
  if (!existing) {
    fields.push({
      name: "name",
      label: "Name",
      required: true,
      placeholder: "openai",
      hint: "letters, digits, . _ and -",
      check: matches(CREDENTIAL_NAME, "Letters, digits, . _ and - only (up to 128)."),
    });
  }
  fields.push({
    name: "type",
    label: "Type",
    type: "select",
    initial: existing?.type ?? "static",
    options: [
      ["static", "Static value"],
      [PROVIDER, "Token provider (OAuth2 client credentials)"],
    ],
  });
  if (type === PROVIDER) {
    const p = existing?.provider;
    fields.push(
      {
        name: "token_url",
        label: "Token URL",
        type: "url",
        required: true,
        initial: p?.token_url ?? "",
        placeholder: "https://auth.example.com/oauth/token",
        check: tokenUrlProblem,
      },
      {
        name: "client_id",
        label: "Client ID",
        required: true,
        initial: p?.client_id ?? "",
        check: matches(PRINTABLE, "Printable ASCII only."),
      },
      {
        name: "client_secret",
        label: "Client secret",
        type: "password",
        required: true,
        hint: "write-only: sent once, never shown again",
      },
      {
        name: "scope",
        label: "Scope",
        initial: p?.scope ?? "",
        hint: "optional, space-separated",
        check: matches(PRINTABLE, "Printable ASCII only."),
      },
    );
  } else {
    fields.push({
      name: "value",
      label: "Value",
      type: "password",
      required: true,
      hint: "write-only: sent once, never shown again",
    });
  }
  const e = existing?.egress;
  fields.push(
    {
      name: "base_url",
      label: "Egress base URL",
      type: "url",
      group: "Egress (optional)",
      initial: e?.base_url ?? "",
      placeholder: "https://api.openai.com",
      hint: "agents call it through Keyward, which adds the credential; empty: no egress",
      check: baseUrlProblem,
    },
    {
      name: "header",
      label: "Header",
      group: "Egress (optional)",
      initial: e?.header ?? "",
      placeholder: "Authorization",
      check: matches(HEADER_NAME, "Must be an HTTP header name."),
    },
    {
      name: "format",
      label: "Format",
      group: "Egress (optional)",
      initial: e?.format ?? "",
      placeholder: "Bearer {value}",
      check: (v) =>
        !PRINTABLE.test(v) || v.length > 512
          ? "1-512 printable ASCII characters."
          : v.includes("{value}")
            ? undefined
            : "Must contain {value}.",
    },
  );
  return fields;
}

/**
 * PUT /admin/v1/credentials/:name. Egress: filled in → set; emptied where there was one → null
 * (removed); never set → left out (the server keeps none).
 */
export function credentialBody(v: Record<string, string>, existing?: CredentialDetail): Record<string, unknown> {
  const body: Record<string, unknown> =
    v.type === PROVIDER
      ? {
          type: PROVIDER,
          token_url: v.token_url,
          client_id: v.client_id,
          client_secret: v.client_secret,
          ...(v.scope ? { scope: v.scope } : {}),
        }
      : { type: "static", value: v.value };
  if (v.base_url) {
    body.egress = {
      base_url: v.base_url,
      ...(v.header ? { header: v.header } : {}),
      ...(v.format ? { format: v.format } : {}),
    };
  } else if (existing?.egress) {
    body.egress = null;
  }
  return body;
}
