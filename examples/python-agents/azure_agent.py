"""An agent calling Azure OpenAI with ``openai.AzureOpenAI``, its Entra ID token coming from Keyward.

The agent holds no Azure secret and no token of its own: Keyward holds the client credentials of an
``oauth2_client_credentials`` credential, fetches the token from Entra, refreshes it before it
expires and pushes each new one to the agent; ``kw.token_provider(...)`` is the
``azure_ad_token_provider`` the ``openai`` client calls before each request.

    KEYWARD_URL=http://127.0.0.1:8086 KEYWARD_AGENT_KEY=kwk_… AZURE_OPENAI_ENDPOINT=http://127.0.0.1:4399 \\
        python examples/python-agents/azure_agent.py "Say hello in French" [--after-refresh]

``--after-refresh`` asks again once Keyward has refreshed the token (it does when a third of the
token's lifetime remains), to show the client picking up the new token with no restart.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from keyward import Keyward, KeywardError
from openai import APIError, AzureOpenAI

CREDENTIAL = "azure_openai"
API_VERSION = "2024-10-21"


def ask(client: AzureOpenAI, deployment: str, message: str) -> str:
    """One chat completion; the answer's text."""
    completion = client.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": message}]
    )
    return completion.choices[0].message.content or ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("message", nargs="?", default="Say hello in French")
    parser.add_argument(
        "--after-refresh", action="store_true", help="ask again once Keyward refreshed the token"
    )
    parser.add_argument(
        "--refresh-timeout", type=float, default=120.0, help="seconds to wait for that refresh"
    )
    args = parser.parse_args()
    settings = {}
    for name in ("KEYWARD_URL", "KEYWARD_AGENT_KEY", "AZURE_OPENAI_ENDPOINT"):
        settings[name] = os.environ.get(name, "")
        if not settings[name]:
            print(f"azure_agent.py: cannot start: {name} is not set", file=sys.stderr)
            return 2
    deployment = os.environ.get("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini")

    try:
        kw = Keyward.connect(url=settings["KEYWARD_URL"], token=settings["KEYWARD_AGENT_KEY"])
    except KeywardError as err:
        print(f"azure_agent.py: cannot start: {err.code}: {err.message}", file=sys.stderr)
        return 1
    with kw:
        refreshed = threading.Event()
        kw.on_change(lambda name, version: refreshed.set() if name == CREDENTIAL else None)
        client = AzureOpenAI(
            azure_endpoint=settings["AZURE_OPENAI_ENDPOINT"],
            api_version=os.environ.get("OPENAI_API_VERSION", API_VERSION),
            azure_ad_token_provider=kw.token_provider(CREDENTIAL),
            max_retries=0,
        )
        try:
            print(f"call 1: {ask(client, deployment, args.message)}", flush=True)
            if args.after_refresh:
                refreshed.clear()  # a refresh from before this call's answer does not count
                print(
                    "waiting for Keyward to refresh the token (a third of its lifetime before it expires)…",
                    flush=True,
                )
                if not refreshed.wait(args.refresh_timeout):
                    print(
                        f"azure_agent.py: no new token from Keyward within {args.refresh_timeout:g} s",
                        file=sys.stderr,
                    )
                    return 1
                print(f"Keyward pushed a new {CREDENTIAL} token: the same client, no restart", flush=True)
                print(f"call 2: {ask(client, deployment, args.message)}", flush=True)
        except APIError as err:
            # The status and the service's error code only: never a header or the request.
            print(
                f"azure_agent.py: Azure OpenAI refused: {getattr(err, 'status_code', '?')} {err.code or ''}",
                file=sys.stderr,
            )
            return 1
        except KeywardError as err:
            print(f"azure_agent.py: no token from Keyward: {err.code}: {err.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
