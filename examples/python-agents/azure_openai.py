"""``run.py azure-openai``: Keyward, the Entra + Azure OpenAI stand-in, an ``oauth2_client_credentials``
credential pointing at the stand-in's token endpoint, and the agent (its own process, holding nothing
but its Keyward key) calling Azure OpenAI twice: once, and again after Keyward refreshed the token."""

from __future__ import annotations

import re
import secrets
from contextlib import ExitStack, closing
from pathlib import Path

from admin import AdminAPI, ExampleError
from azure_standin import SCOPE, AzureStandin
from launcher import python_script, spawn, start_keyward
from multi_agent import ADMIN_TOKEN

AGENT = "azure-agent"
CREDENTIAL = "azure_openai"
TOKEN_NUMBER = re.compile(r"Entra token #(\d+)")


def run_azure_openai(stack: ExitStack, port: int, data_dir: Path, token_lifetime: int) -> bool:
    """Starts everything (stopped by ``stack``) and runs the agent; True when both calls were answered,
    the second with a newer token than the first."""
    if token_lifetime < 3:
        raise ExampleError("--token-lifetime: at least 3 seconds")
    keyward = start_keyward(port, data_dir, ADMIN_TOKEN)
    stack.callback(keyward.stop)
    # Made up for this run: the stand-in accepts these, Keyward stores the secret (write-only).
    client_id, client_secret = f"standin-{secrets.token_hex(8)}", secrets.token_urlsafe(24)
    standin = AzureStandin(client_id, client_secret, token_lifetime).start()
    stack.callback(standin.close)
    print(f"azure-standin listening on {standin.url} (Entra tokens live {token_lifetime} s)", flush=True)

    admin = stack.enter_context(closing(AdminAPI(keyward.url, ADMIN_TOKEN)))
    # The agent only calls out: nothing reaches it through the gateway, the upstream is never used.
    admin.upsert_agent(AGENT, "http://127.0.0.1:9", "python-agents example: AzureOpenAI on a token provider")
    version = admin.put_credential(
        CREDENTIAL,
        {
            "type": "oauth2_client_credentials",
            "token_url": standin.token_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": SCOPE,
        },
    )
    admin.grant(AGENT, read=[CREDENTIAL])
    _, agent_key = admin.new_key(f"agent:{AGENT}", [], name="azure example agent key")
    print(
        f"set up: credential {CREDENTIAL} (oauth2_client_credentials, version {version}, token_url on the "
        f"stand-in), agent {AGENT} with a read grant and its key",
        flush=True,
    )

    agent = spawn(
        "agent",
        python_script(
            "azure_agent.py",
            "Say hello in French",
            "--after-refresh",
            "--refresh-timeout",
            str(token_lifetime * 3 + 30),
        ),
        {
            "KEYWARD_URL": keyward.url,
            "KEYWARD_AGENT_KEY": agent_key,
            "AZURE_OPENAI_ENDPOINT": standin.endpoint,
        },
        hold_errors=False,
    )
    stack.callback(agent.stop)
    code = agent.wait_exit(token_lifetime * 3 + 90)
    numbers = [int(n) for line in agent.lines for n in TOKEN_NUMBER.findall(line)]
    ok = code == 0 and len(numbers) == 2 and numbers[1] > numbers[0]
    if ok:
        print(
            f"\ndemo ok: the agent called Azure OpenAI with Entra token #{numbers[0]}, then with "
            f"#{numbers[1]} after Keyward refreshed it ({standin.issued} tokens issued by the stand-in)",
            flush=True,
        )
    else:
        print(f"\nthe demo did not go as expected (agent exit {code}): see its output above", flush=True)
    return ok
