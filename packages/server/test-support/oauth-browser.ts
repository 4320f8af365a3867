/**
 * A browser reduced to what the OAuth flow needs, over fetch: a cookie jar per origin (cookies as
 * set, sent back to that origin), redirects followed by hand, and the forms of the IdP login page
 * and Keyward's consent page filled in and posted with the page's Origin, as a browser would.
 */
export class HttpBrowser {
  private readonly jar = new Map<string, Map<string, string>>();
  /** Every URL visited, in order (redirect targets included). */
  readonly visited: string[] = [];
  /** Sees a copy of every response first (the OpenAPI conformance test checks Keyward's). */
  inspect: ((method: string, url: string, res: Response) => Promise<void>) | undefined;

  cookies(origin: string): Map<string, string> {
    let c = this.jar.get(origin);
    if (!c) {
      c = new Map();
      this.jar.set(origin, c);
    }
    return c;
  }

  async request(
    url: string,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    const origin = new URL(url).origin;
    this.visited.push(url);
    const jar = this.cookies(origin);
    const headers: Record<string, string> = { ...init.headers };
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | undefined;
    if (init.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, {
      method: init.method ?? "GET",
      headers,
      redirect: "manual",
      ...(body !== undefined ? { body } : {}),
    });
    await this.inspect?.(init.method ?? "GET", url, res.clone());
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = (pair as string).indexOf("=");
      const name = (pair as string).slice(0, eq).trim();
      const value = (pair as string).slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    const text = await res.text();
    const location = res.headers.get("location");
    return {
      status: res.status,
      text,
      location: location === null ? undefined : new URL(location, url).toString(),
      res,
    };
  }

  /** GETs `url` and follows redirects until one leaves for `stopAt` (returned, not visited) or a page answers. */
  async follow(url: string, stopAt: string) {
    let next = url;
    for (let hops = 0; hops < 10; hops++) {
      if (next.startsWith(stopAt)) return { stoppedAt: next } as const;
      const r = await this.request(next);
      if (r.status !== 302 || r.location === undefined) return { page: r } as const;
      next = r.location;
    }
    throw new Error("too many redirects");
  }
}

/** A hidden input's value on a page. */
export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no field ${name} on the page`);
  return m[1] as string;
}

/** The form action of a page (the first form). */
export function formAction(html: string, base: string): string {
  const m = /<form method="post" action="([^"]*)"/.exec(html);
  if (!m) throw new Error("no form on the page");
  return new URL((m[1] as string).replaceAll("&amp;", "&"), base).toString();
}

export interface SignInOptions {
  username: string;
  decision?: "approve" | "deny";
  /** Where the client listens: the flow stops when redirected there. */
  redirectUri: string;
}

/**
 * From the client's authorization URL to the redirect back to it: Keyward sends the browser to the
 * IdP's login page, whose form is posted with the user name; back at Keyward the consent page's
 * form is posted with the decision. Returns the URL the browser was finally sent to, and the
 * consent page's HTML (to look at what it showed).
 */
export async function signInAndConsent(browser: HttpBrowser, authorizeUrl: string, opts: SignInOptions) {
  const toLogin = await browser.follow(authorizeUrl, opts.redirectUri);
  if ("stoppedAt" in toLogin) return { final: toLogin.stoppedAt, consentPage: undefined };
  const login = toLogin.page;
  if (login.status !== 200 || !login.text.includes("Sign in")) {
    throw new Error(`expected the IdP login page, got ${login.status}: ${login.text.slice(0, 200)}`);
  }
  const loginUrl = browser.visited.at(-1) as string;
  const posted = await browser.request(formAction(login.text, loginUrl), {
    method: "POST",
    form: { request: hiddenField(login.text, "request"), username: opts.username },
    headers: { origin: new URL(loginUrl).origin },
  });
  if (posted.location === undefined) throw new Error(`IdP login answered ${posted.status}`);
  const toConsent = await browser.follow(posted.location, opts.redirectUri);
  if ("stoppedAt" in toConsent) return { final: toConsent.stoppedAt, consentPage: undefined };
  const consent = toConsent.page;
  if (consent.status !== 200)
    throw new Error(`expected the consent page, got ${consent.status}: ${consent.text.slice(0, 300)}`);
  const consentUrl = browser.visited.at(-1) as string;
  const answered = await browser.request(formAction(consent.text, consentUrl), {
    method: "POST",
    form: {
      consent: hiddenField(consent.text, "consent"),
      csrf: hiddenField(consent.text, "csrf"),
      decision: opts.decision ?? "approve",
    },
    headers: { origin: new URL(consentUrl).origin, "sec-fetch-site": "same-origin" },
  });
  if (answered.status !== 302 || answered.location === undefined) {
    throw new Error(`consent answered ${answered.status}: ${answered.text.slice(0, 300)}`);
  }
  return { final: answered.location, consentPage: consent.text };
}
