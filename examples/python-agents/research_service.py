"""The ``research`` agent: a FastAPI app behind Keyward, speaking LangServe's ``/invoke`` shape.

It trusts nothing but a Keyward access token whose audience is ``research`` (checked by the SDK's
FastAPI dependency, JWKS fetched once and cached): the caller's own key never reaches it. It answers
with what it found and with whom it acted for, as the verified token says (``sub``, the ``act`` chain).

Run on its own::

    KEYWARD_URL=http://127.0.0.1:8085 PORT=4101 python examples/python-agents/research_service.py
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated[…, Depends(…)] at runtime.
import os
import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from keyward.fastapi import require_token
from keyward.verify import Claims, Verifier
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel, ConfigDict, Field

from serving import keyward_url_from_env, new_app, serve

MAX_QUERY_CHARS = 500

#: A small, fixed library, so the example needs no model and answers the same way every time.
LIBRARY = [
    {
        "id": "rfc8693",
        "title": "RFC 8693: OAuth 2.0 Token Exchange",
        "text": "A client exchanges a subject token for a new token bound to another audience. The act claim "
        "names the party acting on behalf of the subject, nested for delegation chains.",
    },
    {
        "id": "rfc9068",
        "title": "RFC 9068: JWT Profile for OAuth 2.0 Access Tokens",
        "text": "Access tokens are signed JWTs of type at+jwt carrying iss, sub, aud, exp, client_id and "
        "scope, so a resource server can verify them without calling the issuer.",
    },
    {
        "id": "least-privilege",
        "title": "Least privilege for agent chains",
        "text": "Each agent in a chain should receive a short-lived token for exactly one audience with "
        "scopes no wider than the original caller's, so a leaked token opens one door for minutes.",
    },
    {
        "id": "key-rotation",
        "title": "Rotating API keys without downtime",
        "text": "Issue the new key, let the old one work for a grace period, then revoke it; revocation must "
        "reach every replica on the next request.",
    },
]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9+]{3,}", text.lower())


def search(query: str) -> list[dict[str, str]]:
    """The (at most 3) library entries sharing the most words with ``query``."""
    terms = _words(query)
    scored = []
    for doc in LIBRARY:
        haystack = set(_words(f"{doc['title']} {doc['text']}"))
        score = sum(1 for t in terms if t in haystack)
        if score > 0:
            scored.append((-score, doc["id"], doc))
    return [{"id": d["id"], "title": d["title"], "snippet": d["text"]} for _, _, d in sorted(scored)[:3]]


#: The chain LangServe would serve at /invoke; here a plain function, no model needed.
research_chain = RunnableLambda(search)


class InvokeRequest(BaseModel):
    """LangServe's ``/invoke`` body: the chain's input (``config`` and ``kwargs`` are accepted, unused)."""

    model_config = ConfigDict(extra="allow")
    input: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)


def acted_for(claims: Claims) -> dict[str, Any]:
    """Whom a verified token says the request is for, through which agents (outermost first), with which
    scopes: every agent of the example reports this, so the caller sees the chain end to end."""
    out: dict[str, Any] = {
        "sub": claims.subject,
        "act_chain": list(claims.act_chain),
        "scope": " ".join(claims.scopes),
    }
    if "act" in claims:
        out["act"] = claims["act"]
    return out


def create_research_app(keyward_url: str) -> FastAPI:
    """The research agent. ``POST /invoke {"input": "<query>"}`` →
    ``{"output": {"query", "findings": [{id, title, snippet}], "acted_for": {sub, act, act_chain, scope}},
    "metadata": {"run_id"}}``; 401/403 in Keyward's error shape without a valid ``aud=research`` token.

    Example::

        app = create_research_app("http://127.0.0.1:8085")
        serve(app, "research", 4101)
    """
    verifier = Verifier(issuer=keyward_url, audience="research")
    caller = require_token(verifier, scopes=["agent:research"])
    app = new_app("research")

    @app.post("/invoke")
    def invoke(body: InvokeRequest, claims: Annotated[Claims, Depends(caller)]) -> dict[str, Any]:
        query = body.input.strip()
        who = acted_for(claims)
        print(
            f"research <- /invoke for {who['sub']} via {' > '.join(who['act_chain']) or 'no agent'}",
            flush=True,
        )
        output = {"query": query, "findings": research_chain.invoke(query), "acted_for": who}
        return {"output": output, "metadata": {"run_id": str(uuid.uuid4()), "feedback_tokens": []}}

    return app


if __name__ == "__main__":
    serve(create_research_app(keyward_url_from_env()), "research", int(os.environ.get("PORT", "4101")))
