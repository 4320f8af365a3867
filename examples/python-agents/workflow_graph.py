"""The workflow's LangGraph: ``research`` (a delegated call to the research agent through Keyward's
gateway) then ``compose`` (the answer).

The caller's token never enters the graph's state (a checkpointer would store it): it travels in the
run's config, ``config["configurable"]["subject_token"]``, as LangGraph passes per-run values, and the
research node acts for it with ``keyward.delegation.acting_for``.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import httpx
from keyward import Keyward, KeywardError
from keyward.delegation import DelegatedAuth, ExchangeError, acting_for
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

#: Bound on what the research agent may send back (its answers are a few KB).
MAX_RESEARCH_BYTES = 256 * 1024
DOWNSTREAM_TIMEOUT_S = 10.0


class WorkflowState(TypedDict, total=False):
    question: str
    #: ``sub`` of the token the gateway forwarded: whom this run is for.
    caller: str
    #: ``{"ok": True, "result": …}`` or ``{"ok": False, "stage": "exchange" | "call", "error", "message"}``.
    research: dict[str, Any]
    answer: str


def research_client(keyward_url: str, kw: Keyward) -> httpx.Client:
    """Calls to research through Keyward's gateway. Each request's caller token (set by ``acting_for``)
    is exchanged — the workflow's own agent key as the actor — for one bound to ``research``, narrowed
    to ``agent:research`` so research holds no authority to call any other agent, and cached until
    shortly before it expires.

    Example::

        with research_client(url, kw) as research, acting_for(forwarded_jwt):
            research.post("/invoke", json={"input": "token exchange"})
    """
    return httpx.Client(
        base_url=f"{keyward_url}/agents/research",
        auth=DelegatedAuth(kw, "research", scope="agent:research"),
        timeout=DOWNSTREAM_TIMEOUT_S,
        follow_redirects=False,
    )


def build_workflow_graph(research: httpx.Client) -> Any:
    """The compiled graph; ``research`` is :func:`research_client`.

    Example::

        graph = build_workflow_graph(research_client(url, kw))
        state = graph.invoke({"question": "…", "caller": "consumer:demo"},
                             config={"configurable": {"subject_token": forwarded_jwt}})
    """

    def research_node(state: WorkflowState, config: RunnableConfig) -> WorkflowState:
        subject_token = config.get("configurable", {})["subject_token"]
        with acting_for(subject_token):
            return {"research": _call_research(research, state["question"])}

    def compose(state: WorkflowState) -> WorkflowState:
        leg = state.get("research", {})
        question = state["question"]
        if not leg.get("ok"):
            return {"answer": f"Research was not available ({leg.get('error')})."}
        titles = [f["title"] for f in leg["result"]["findings"]]
        if not titles:
            return {"answer": f'On "{question}", research found nothing.'}
        plural = "" if len(titles) == 1 else "s"
        return {
            "answer": f'On "{question}", research found {len(titles)} source{plural}: {"; ".join(titles)}.'
        }

    graph = StateGraph(WorkflowState)
    graph.add_node("research", research_node)
    graph.add_node("compose", compose)
    graph.add_edge(START, "research")
    graph.add_edge("research", "compose")
    graph.add_edge("compose", END)
    return graph.compile()


def _call_research(research: httpx.Client, question: str) -> dict[str, Any]:
    """``POST <keyward>/agents/research/invoke``: the gateway checks the delegated token and forwards a
    fresh JWT for research (same ``sub`` and ``act``). A refusal is a result, not an exception."""
    try:
        with research.stream("POST", "/invoke", json={"input": question}) as res:
            body = _read_json(res)
            status = res.status_code
    except ExchangeError as err:  # Keyward would not delegate: invalid_target, invalid_scope, …
        return _refused("exchange", err.code, err.error_description or err.message)
    except KeywardError as err:  # no answer from the token endpoint
        return _refused("exchange", err.code, err.message)
    except httpx.HTTPError:
        return _refused("call", "upstream_unreachable", "research did not answer")
    output = body.get("output") if isinstance(body, dict) else None
    if status == 200 and isinstance(output, dict):
        return {"ok": True, "result": output}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return _refused("call", str(error.get("code")), str(error.get("message")))
    return _refused("call", f"http_{status}", f"research answered {status}")


def _refused(stage: str, code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "stage": stage, "error": code, "message": message}


def _read_json(res: httpx.Response) -> Any:
    chunks: list[bytes] = []
    size = 0
    for chunk in res.iter_bytes():
        size += len(chunk)
        if size > MAX_RESEARCH_BYTES:
            return None
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        return None
