"""``run.py multi-agent``: Keyward, the research and workflow services, their set-up through the admin
API, and the demo requests of two callers, one allowed to reach research through the workflow and one
not."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import httpx

from admin import AdminAPI, ExampleError
from launcher import python_script, spawn, start_keyward

#: This example's Keyward only: the first admin token of its own data dir (any 32+ characters).
ADMIN_TOKEN = "python-agents-example-admin-token-0123456789"  # noqa: S105 - a local demo's, on purpose
QUESTION = "how does token exchange delegate between agents?"
CALLERS = {
    # consumer name: the scopes of its key
    "demo": ["agent:workflow", "agent:research"],
    "demo-limited": ["agent:workflow"],
}
DESCRIPTIONS = {
    "research": "python-agents example: searches a small library (FastAPI, LangServe /invoke)",
    "workflow": "python-agents example: a LangGraph flow asking research on the caller's behalf",
}


def free_port() -> int:
    """A port free right now on 127.0.0.1: each agent must be registered with its URL before it starts
    (the workflow needs its agent key, which needs the agent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_multi_agent(stack: ExitStack, port: int, data_dir: Path) -> dict[str, Any]:
    """Starts everything (stopped by ``stack``), runs the two demo requests and prints what each caller
    sees. Answers the Keyward URL, the caller keys (never printed here) and whether the demo went as
    expected, and the children (to watch while serving)."""
    keyward = start_keyward(port, data_dir, ADMIN_TOKEN)
    stack.callback(keyward.stop)
    url = keyward.url
    admin = stack.enter_context(closing(AdminAPI(url, ADMIN_TOKEN)))

    ports = {"research": free_port(), "workflow": free_port()}
    for name, p in ports.items():
        admin.upsert_agent(name, f"http://127.0.0.1:{p}", DESCRIPTIONS[name])
    # may_call, not a scope on the workflow's key, decides which agents it may exchange tokens for.
    admin.grant("workflow", may_call=["research"])
    _, workflow_key = admin.new_key("agent:workflow", [], name="workflow actor key")
    keys = {}
    for consumer, scopes in CALLERS.items():
        admin.ensure_consumer(consumer)
        keys[consumer] = admin.new_key(f"consumer:{consumer}", scopes, name="python-agents example caller")[1]
    print(
        "set up: agents research and workflow (workflow may_call research), the workflow's agent key, "
        + ", ".join(f"consumer:{c} ({' '.join(s)})" for c, s in CALLERS.items()),
        flush=True,
    )

    # The services get nothing but what they need: research no secret at all, workflow its own key.
    research = spawn(
        "research", python_script("research_service.py"), {"KEYWARD_URL": url, "PORT": str(ports["research"])}
    )
    stack.callback(research.stop)
    workflow = spawn(
        "workflow",
        python_script("workflow_service.py"),
        {"KEYWARD_URL": url, "PORT": str(ports["workflow"]), "WORKFLOW_AGENT_KEY": workflow_key},
    )
    stack.callback(workflow.stop)
    research.wait_ready()
    workflow.wait_ready()

    with httpx.Client(timeout=30) as http:
        allowed = ask(http, url, "demo", keys["demo"])
        refused = ask(http, url, "demo-limited", keys["demo-limited"])
    ok = _acted_for_through_workflow(allowed) and refused.status_code == 403
    return {"url": url, "keys": keys, "ok": ok, "children": [keyward, research, workflow]}


def ask(http: httpx.Client, url: str, consumer: str, key: str) -> httpx.Response:
    """One caller asks the workflow through the gateway; prints what it gets back."""
    print(
        f"\n-> consumer:{consumer} (key scopes: {' '.join(CALLERS[consumer])}) asks the workflow:\n"
        f'   POST {url}/agents/workflow/invoke {{"input": {{"question": "{QUESTION}"}}}}',
        flush=True,
    )
    try:
        res = http.post(
            f"{url}/agents/workflow/invoke",
            json={"input": {"question": QUESTION}},
            headers={"authorization": f"Bearer {key}"},
        )
    except httpx.HTTPError as err:
        raise ExampleError(f"the demo request got no answer from Keyward ({type(err).__name__})") from None
    body = _json(res)
    if res.status_code == 200 and isinstance(body.get("output"), dict):
        output = body["output"]
        print(f"<- 200: {output.get('answer')}")
        who = output.get("research", {}).get("result", {}).get("acted_for", {})
        act = " > ".join(who.get("act_chain", [])) or "none"
        print(f"   research acted for {who.get('sub')} with act: {act} (scope {who.get('scope')})")
        print("   " + json.dumps(output, indent=2).replace("\n", "\n   "), flush=True)
    else:
        error = body.get("error")
        if not isinstance(error, dict):
            error = {}
        print(
            f"<- {res.status_code} {error.get('code', 'error')}: {error.get('message', res.reason_phrase)}",
            flush=True,
        )
    return res


def _acted_for_through_workflow(res: httpx.Response) -> bool:
    who = _json(res).get("output", {}).get("research", {}).get("result", {}).get("acted_for", {})
    return (
        res.status_code == 200
        and who.get("sub") == "consumer:demo"
        and who.get("act_chain") == ["agent:workflow"]
    )


def _json(res: httpx.Response) -> dict[str, Any]:
    try:
        body = res.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
