"""The verifier against the REAL Keyward server (tokens minted by it, JWKS fetched from it), plus
its cache and configuration rules with a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keyward.verify import Claims, InvalidTokenError, Verifier
from support.server import KeywardServer, unique
from test_verify_support import AUDIENCE, ISSUER, Issuer, JwksServer, ManualClock, jwks_server

TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def issuer_of(server: KeywardServer) -> str:
    meta = httpx.get(f"{server.url}/.well-known/oauth-authorization-server", timeout=10).json()
    return str(meta["issuer"])


def consumer_key(server: KeywardServer, prefix: str, scopes: list[str]) -> str:
    name = unique(prefix)
    server.admin.call("POST", "/consumers", {"name": name})
    return server.admin.key(f"consumer:{name}", scopes=scopes)[1]


def token_for(server: KeywardServer, api_key: str, **body: Any) -> str:
    res = httpx.post(f"{server.url}/v1/auth/token", json={"api_key": api_key, **body}, timeout=10)
    assert res.status_code == 200, res.text
    return str(res.json()["access_token"])


@dataclass
class Setup:
    issuer: str
    agent: str
    token: str


@pytest.fixture(scope="module")
def setup(keyward: KeywardServer) -> Setup:
    agent = keyward.admin.agent(unique("research"))
    key = consumer_key(keyward, "billing", [f"agent:{agent}", "reports:read"])
    return Setup(issuer_of(keyward), agent, token_for(keyward, key, audience=agent))


def test_verifies_a_real_token_and_exposes_its_claims(setup: Setup) -> None:
    v = Verifier(issuer=setup.issuer, audience=setup.agent)
    claims = v.verify(setup.token)
    assert isinstance(claims, Claims) and isinstance(claims, dict)
    assert claims.subject.startswith("consumer:billing-")
    assert set(claims.scopes) == {f"agent:{setup.agent}", "reports:read"}
    assert claims.audience == (setup.agent,)
    assert claims.act_chain == []
    assert claims["iss"] == setup.issuer and claims.expires_at == claims["exp"]
    assert claims.client_id == claims["client_id"]
    assert v.jwks_url == setup.issuer.rstrip("/") + "/.well-known/jwks.json"


async def test_averify_a_real_token(setup: Setup) -> None:
    v = Verifier(issuer=setup.issuer, audience=[setup.agent, "other"])
    assert (await v.averify(setup.token)).subject.startswith("consumer:")
    assert (await v.averify_header(f"Bearer {setup.token}")).subject.startswith("consumer:")


def test_wrong_audience_or_issuer_refused(setup: Setup) -> None:
    with pytest.raises(InvalidTokenError, match="another audience") as info:
        Verifier(issuer=setup.issuer, audience="someone-else").verify(setup.token)
    assert info.value.code == "invalid_token"
    with pytest.raises(InvalidTokenError, match="another issuer"):
        Verifier(
            issuer=setup.issuer + "/x", audience=setup.agent, jwks_url=setup.issuer + "/.well-known/jwks.json"
        ).verify(setup.token)


def test_token_without_audience_is_for_the_issuer(keyward: KeywardServer, setup: Setup) -> None:
    key = consumer_key(keyward, "c", ["x"])
    token = token_for(keyward, key)
    assert Verifier(issuer=setup.issuer, audience=setup.issuer).verify(token).scopes == ("x",)


def test_delegated_token_shows_the_act_chain(keyward: KeywardServer, setup: Setup) -> None:
    admin = keyward.admin
    w, d = admin.agent(unique("w")), admin.agent(unique("d"))
    admin.grant(w, may_call=[d])
    caller = consumer_key(keyward, "c", [f"agent:{w}", f"agent:{d}"])
    _, w_key = admin.key(f"agent:{w}")
    subject = token_for(keyward, caller, audience=w)
    res = httpx.post(
        f"{keyward.url}/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": TOKEN_TYPE,
            "actor_token": w_key,
            "actor_token_type": TOKEN_TYPE,
            "audience": d,
        },
        timeout=10,
    )
    assert res.status_code == 200, res.text
    claims = Verifier(issuer=setup.issuer, audience=d).verify(res.json()["access_token"])
    assert claims.act_chain == [f"agent:{w}"]
    assert claims.subject.startswith("consumer:c-")
    with pytest.raises(InvalidTokenError):
        Verifier(issuer=setup.issuer, audience=w).verify(res.json()["access_token"])


def test_a_real_key_rotation_is_picked_up(own_keyward: KeywardServer) -> None:
    admin = own_keyward.admin
    agent = admin.agent()
    key = consumer_key(own_keyward, "c", [f"agent:{agent}"])
    v = Verifier(issuer=issuer_of(own_keyward), audience=agent)
    before = token_for(own_keyward, key, audience=agent)
    v.verify(before)
    admin.call("POST", "/signing-keys/rotate")
    after = token_for(own_keyward, key, audience=agent)
    assert after.split(".")[0] != before.split(".")[0]  # a new kid
    assert v.verify(after).subject.startswith("consumer:")
    assert v.verify(before).subject.startswith("consumer:")


# -- cache, claims object, header, configuration (own keys) ----------------------------------------


@pytest.fixture
def local() -> Iterator[tuple[Issuer, JwksServer]]:
    issuer = Issuer()
    with jwks_server(issuer) as server:
        yield issuer, server


def test_repeated_token_served_from_cache_until_exp(local: tuple[Issuer, JwksServer]) -> None:
    issuer, server = local
    clock = ManualClock()
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, clock=clock)
    token = issuer.mint(exp=int(clock.now) + 60)
    first = v.verify(token)
    assert v.verify(token) is first  # from the cache
    clock.advance(60 + 4)  # 4 s past exp, within the default clock tolerance of 5 s (as the Node SDK)
    assert v.verify(token) is first
    clock.advance(1)
    for _ in range(2):  # never after exp, whether cached or not
        with pytest.raises(InvalidTokenError) as info:
            v.verify(token)
        assert info.value.code == "token_expired"


def test_leeway_applies_to_exp(local: tuple[Issuer, JwksServer]) -> None:
    issuer, server = local
    clock = ManualClock()
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, clock=clock, leeway=5)
    token = issuer.mint(exp=int(clock.now) - 3)
    assert v.verify(token).subject
    clock.advance(3)
    with pytest.raises(InvalidTokenError, match="expired"):
        v.verify(token)


def test_cache_is_bounded(local: tuple[Issuer, JwksServer]) -> None:
    issuer, server = local
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, cache_size=3)
    tokens = [issuer.mint() for _ in range(10)]
    results = [v.verify(t) for t in tokens]
    assert len(v._results) == 3
    assert v.verify(tokens[-1]) is results[-1]
    assert v.verify(tokens[0]) is not results[0]  # evicted: verified again
    off = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url, cache_size=0)
    off.verify(tokens[0])
    assert len(off._results) == 0


def test_claims_are_read_only(local: tuple[Issuer, JwksServer]) -> None:
    issuer, server = local
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url)
    token = issuer.mint(act={"sub": "agent:w", "act": {"sub": "agent:z"}}, extra=[1, {"a": 2}])
    claims = v.verify(token)
    assert claims.act_chain == ["agent:w", "agent:z"]
    changes: tuple[Callable[[], object], ...] = (
        lambda: claims.__setitem__("sub", "user:admin"),
        lambda: claims.update(sub="x"),
        lambda: claims.pop("sub"),
        lambda: claims["act"].__setitem__("sub", "x"),
        claims.clear,
    )
    for change in changes:
        with pytest.raises(TypeError):
            change()
    claims.act_chain.append("x")
    assert v.verify(token).act_chain == ["agent:w", "agent:z"]
    assert claims["extra"] == (1, {"a": 2})
    mutable = dict(claims)
    mutable["sub"] = "copy"
    assert claims.subject == "consumer:billing"


def test_verify_header(local: tuple[Issuer, JwksServer]) -> None:
    issuer, server = local
    v = Verifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.url)
    token = issuer.mint()
    assert v.verify_header(f"Bearer {token}").subject
    assert v.verify_header(f"bearer \t{token} ").subject
    for missing in (None, "", "   "):
        with pytest.raises(InvalidTokenError) as info:
            v.verify_header(missing)
        assert info.value.code == "missing_credentials"
    for bad in (token, f"Basic {token}", f"Bearer {token} extra"):
        with pytest.raises(InvalidTokenError) as info:
            v.verify_header(bad)
        assert info.value.code == "invalid_token"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"issuer": ""}, "issuer"),
        ({"audience": []}, "audience"),
        ({"audience": ["ok", ""]}, "audience"),
        ({"issuer": "not-a-url"}, "issuer must be an http"),
        ({"jwks_url": "file:///etc/passwd"}, "jwks_url"),
        ({"algorithms": ("HS256",)}, "algorithms"),
        ({"algorithms": ("ES256", "none")}, "algorithms"),
        ({"algorithms": ()}, "algorithms"),
        ({"leeway": -1}, "leeway"),
        ({"timeout": 0}, "timeout"),
        ({"cache_size": 10**7}, "cache_size"),
        ({"cache_size": -1}, "cache_size"),
        ({"jwks_cooldown": float("nan")}, "jwks_cooldown"),
    ],
)
def test_bad_configuration_refused_at_construction(options: dict[str, Any], words: str) -> None:
    base: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    with pytest.raises(ValueError, match=words):
        Verifier(**{**base, **options})


def test_mock_transport_serves_sync_and_async(local: tuple[Issuer, JwksServer]) -> None:
    issuer, _ = local
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"keys": [issuer.jwk]})

    v = Verifier(issuer=ISSUER, audience=AUDIENCE, transport=httpx.MockTransport(handler))
    assert v.verify(issuer.mint()).subject
    assert calls == [ISSUER + "/.well-known/jwks.json"]
