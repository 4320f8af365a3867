"""Keyward's admin API as the examples use it, with errors a person can act on.

Every failure is an :class:`ExampleError` whose message is the whole story (one line, never a secret):
the runner prints it as ``run.py: cannot start: <message>`` and exits 1.
"""

from __future__ import annotations

import time
from typing import Any

import httpx


class ExampleError(Exception):
    """A problem the person running the example can fix; its message says what to do."""


class AdminAPI:
    """``/admin/v1`` of one Keyward, authenticated with an admin token.

    Example::

        admin = AdminAPI("http://127.0.0.1:8085", admin_token)
        admin.upsert_agent("research", "http://127.0.0.1:4101", "looks things up")
        key_id, secret = admin.new_key("agent:workflow", [])
    """

    def __init__(self, keyward_url: str, admin_token: str, timeout: float = 10.0) -> None:
        self.url = keyward_url
        self._http = httpx.Client(
            base_url=f"{keyward_url}/admin/v1",
            headers={"authorization": f"Bearer {admin_token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = ()) -> tuple[int, Any]:
        """(status, parsed body) for an expected status (default: any 2xx), else an ExampleError."""
        try:
            res = self._http.request(method, path, json=body)
        except httpx.HTTPError as err:
            raise ExampleError(
                f"cannot reach Keyward at {self.url} ({type(err).__name__}): is it running?"
            ) from None
        try:
            parsed = res.json() if res.content else None
        except ValueError:
            parsed = None
        if res.status_code in expect or (not expect and res.is_success):
            return res.status_code, parsed
        if res.status_code == 401:
            raise ExampleError(
                f"Keyward at {self.url} refused the admin token (401): KEYWARD_ADMIN_TOKEN only sets the "
                "first admin token of an empty data dir; use the example's own data dir (see the README)"
            )
        error = parsed.get("error") if isinstance(parsed, dict) else None
        detail = f" ({error.get('code')}: {error.get('message')})" if isinstance(error, dict) else ""
        raise ExampleError(f"Keyward admin API: {method} {path} answered {res.status_code}{detail}")

    def upsert_agent(self, name: str, upstream: str, description: str) -> None:
        """Creates the agent, or points an existing one at ``upstream``: running an example again is fine."""
        status, _ = self.call(
            "POST",
            "/agents",
            {"name": name, "upstream": upstream, "description": description},
            expect=(201, 409),
        )
        if status == 409:
            self.call("PATCH", f"/agents/{name}", {"upstream": upstream})

    def ensure_consumer(self, name: str) -> None:
        self.call("POST", "/consumers", {"name": name}, expect=(201, 409))

    def grant(self, agent: str, *, read: list[str] | None = None, may_call: list[str] | None = None) -> None:
        credentials = [{"name": n, "mode": "read"} for n in read or []]
        self.call("PUT", f"/agents/{agent}/grants", {"credentials": credentials, "may_call": may_call or []})

    def new_key(self, owner: str, scopes: list[str], name: str | None = None) -> tuple[str, str]:
        """A fresh key of ``owner``: (key id, secret). The secret is shown once: never log it."""
        body: dict[str, Any] = {"owner": owner, "scopes": scopes}
        if name is not None:
            body["name"] = name
        _, out = self.call("POST", "/keys", body, expect=(201,))
        return str(out["key"]["id"]), str(out["secret"])

    def put_credential(self, name: str, body: dict[str, Any], wait_s: float = 60) -> int:
        """Creates or updates a credential; its new version. A token provider has a version once its
        first token arrived: Keyward fetches it before answering and, should that fetch fail (a slow
        or busy token endpoint), retries it in the background — so wait for it, up to ``wait_s``."""
        _, out = self.call("PUT", f"/credentials/{name}", body, expect=(200, 201))
        deadline = time.monotonic() + wait_s
        while out.get("version") is None:
            if time.monotonic() > deadline:
                why = out.get("status_message") or "no reason given"
                raise ExampleError(f"credential {name} has no token after {wait_s:g} s: {why}")
            time.sleep(0.25)
            _, out = self.call("GET", f"/credentials/{name}")
        return int(out["version"])
