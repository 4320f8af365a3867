"""The ``workflow`` agent: a FastAPI app behind Keyward running a LangGraph ``StateGraph`` whose research
node calls the research agent through Keyward's gateway with a delegated token.

Keyward forwards each caller's request with a JWT (``aud=workflow``, ``sub`` = the caller). The
workflow verifies it with the SDK, then exchanges exactly that JWT — its own agent key as the actor —
for a token bound to ``research`` (``act: agent:workflow``). Keyward grants it only because the
workflow ``may_call`` research *and* the caller's scopes include ``agent:research``.

Run on its own (its agent key in the environment, never in code)::

    KEYWARD_URL=http://127.0.0.1:8085 WORKFLOW_AGENT_KEY=kwk_… PORT=4100 \\
        python examples/python-agents/workflow_service.py
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated[…, Depends(…)] at runtime.
import os
import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from keyward import Keyward, KeywardError
from keyward.fastapi import require_token
from keyward.verify import Claims, Verifier
from pydantic import BaseModel, ConfigDict, Field

from serving import error_response, fail, keyward_url_from_env, new_app, required_env, serve

try:
    from workflow_graph import build_workflow_graph, research_client
except ImportError as err:  # langgraph or one of its dependencies is not installed
    fail(f"LangGraph cannot be imported ({err}): pip install langgraph (see the README)")

MAX_QUESTION_CHARS = 500
BEARER = re.compile(r"^Bearer[ \t]+(\S+)[ \t]*$", re.IGNORECASE)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


class InvokeRequest(BaseModel):
    """LangServe's ``/invoke`` body (``config`` and ``kwargs`` are accepted, unused)."""

    model_config = ConfigDict(extra="allow")
    input: Question


def create_workflow_app(keyward_url: str, kw: Keyward) -> FastAPI:
    """The workflow agent. ``POST /invoke {"input": {"question": "…"}}`` →
    ``{"output": {"question", "caller", "answer", "research"}, "metadata": {"run_id"}}``; when Keyward
    refuses to delegate (the caller may not use research) or research refuses: the status and code of
    that refusal, ``{"error": {"code", "message", "stage"}}``.

    Example::

        with Keyward.connect(url=url, token=agent_key) as kw:
            serve(create_workflow_app(url, kw), "workflow", 4100)
    """
    verifier = Verifier(issuer=keyward_url, audience="workflow")
    caller = require_token(verifier, scopes=["agent:workflow"])
    graph = build_workflow_graph(research_client(keyward_url, kw))
    app = new_app("workflow")

    @app.post("/invoke")
    def invoke(body: InvokeRequest, request: Request, claims: Annotated[Claims, Depends(caller)]) -> Any:
        # Exactly the value the dependency verified: the JWT the gateway forwarded, never the caller's key.
        match = BEARER.match(request.headers.get("authorization", ""))
        if match is None:  # the dependency accepted it, so this cannot happen; do not guess if it does
            return error_response(401, "invalid_token", "no bearer token")
        print(f"workflow <- /invoke for {claims.subject}", flush=True)
        state = graph.invoke(
            {"question": body.input.question.strip(), "caller": claims.subject},
            config={"configurable": {"subject_token": match.group(1)}},
        )
        leg = state["research"]
        if not leg["ok"]:
            status = (
                403
                if leg["stage"] == "exchange" and leg["error"] in ("invalid_target", "invalid_scope")
                else 502
            )
            where = (
                "Keyward refused to delegate to research"
                if leg["stage"] == "exchange"
                else "research refused"
            )
            return JSONResponse(
                {
                    "error": {
                        "code": leg["error"],
                        "message": f"{where}: {leg['message']}",
                        "stage": leg["stage"],
                    }
                },
                status_code=status,
            )
        output = {
            "question": state["question"],
            "caller": claims.subject,
            "answer": state["answer"],
            "research": leg,
        }
        return {"output": output, "metadata": {"run_id": str(uuid.uuid4()), "feedback_tokens": []}}

    return app


def main() -> None:
    keyward_url = keyward_url_from_env()
    agent_key = required_env("WORKFLOW_AGENT_KEY", "the workflow agent's own Keyward key (kwk_…)")
    port = int(os.environ.get("PORT", "4100"))
    try:
        kw = Keyward.connect(url=keyward_url, token=agent_key)
    except KeywardError as err:
        fail(f"{err.code}: {err.message}")
    with kw:
        serve(create_workflow_app(keyward_url, kw), "workflow", port)


if __name__ == "__main__":
    main()
