import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { REDIRECT_URI } from "./mcp-oauth.js";
import { HttpBrowser, signInAndConsent } from "./oauth-browser.js";

/**
 * An MCP client's OAuth state as the official SDK expects an application to keep it, for a user
 * who signs in as `username`. `redirectToAuthorization` is that user's browser: it follows the
 * authorization URL over HTTP, signs in at the test IdP's login form, approves the consent page,
 * and keeps the code it was sent back with (what a desktop client's loopback listener receives).
 */
export class SignInAsProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = "";
  code: string | undefined;
  authorizationUrls: URL[] = [];
  readonly browser = new HttpBrowser();

  constructor(readonly username: string) {}

  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      redirect_uris: [REDIRECT_URI],
      client_name: "MCP SDK test client",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    const { final } = await signInAndConsent(this.browser, url.toString(), {
      username: this.username,
      redirectUri: REDIRECT_URI,
    });
    this.code = new URL(final).searchParams.get("code") ?? undefined;
  }
}
