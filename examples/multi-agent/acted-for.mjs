/**
 * Who a verified Keyward token says a request is for (`sub`), through which agents it came
 * (`act`, RFC 8693: the outermost actor is the agent that exchanged the token last) and with which
 * scopes. Every downstream agent reports this, so the caller can see the chain end to end.
 */
export function actedFor(token) {
  return {
    sub: token.subject,
    ...(token.claims.act !== undefined ? { act: token.claims.act } : {}),
    scope: token.scopes.join(" "),
  };
}
