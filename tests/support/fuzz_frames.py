"""Hypothesis strategies for what a hostile or broken client sends: sync protocol frames and
HTTP requests (tests/runtime/net/test_fuzz.py throws them at a live server).

Strategies build small *descriptions*; :func:`materialize` turns them into what goes on the
wire, so a 5 MB string or 10,000 levels of nesting cost nothing to generate or shrink.

Extending (e.g. with authentication): add a strategy of frame dicts to :data:`FRAME_KINDS`
(an ``Authenticate`` with real or forged JWTs, say) and one of header dicts to
:data:`HEADER_KINDS` (``{"Authorization": "Bearer <token>"}``); the runner sends whatever
they draw and checks the same invariants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from hypothesis import strategies as st

from support.jwt_issuer import new_key, public_jwk


@dataclass(frozen=True)
class Big:
    """A string of ``size`` characters (``char`` repeated), made at send time."""

    size: int
    char: str = "x"


@dataclass(frozen=True)
class Deep:
    """``levels`` nested arrays (or objects), made at send time."""

    levels: int
    objects: bool = False


@dataclass(frozen=True)
class Raw:
    """Text sent as it is (not JSON-encoded): garbage, truncated JSON, a bare value."""

    text: str


def materialize(value: Any) -> Any:
    """``value`` with every :class:`Big` / :class:`Deep` made real (Raw left for the sender)."""
    if isinstance(value, Big):
        return value.char * value.size
    if isinstance(value, Deep):
        return json.loads(_deep_text(value))
    if isinstance(value, dict):
        return {materialize(k): materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def wire_text(message: Any) -> str:
    """The text frame or body for ``message``; a :class:`Deep` inside is spliced in as text
    (``json.dumps`` itself would recurse into it)."""
    if isinstance(message, Raw):
        return message.text
    deep: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Deep):
            deep.append(_deep_text(value))
            return f"@@DEEP{len(deep) - 1}@@"
        if isinstance(value, Big):
            return materialize(value)
        if isinstance(value, dict):
            return {swap(k): swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(message))
    for i, piece in enumerate(deep):
        text = text.replace(f'"@@DEEP{i}@@"', piece)
    return text


def _deep_text(deep: Deep) -> str:
    if deep.objects:
        return '{"a":' * deep.levels + "1" + "}" * deep.levels
    return "[" * deep.levels + "]" * deep.levels


# -- values and arguments ---------------------------------------------------------------------

_specials = st.sampled_from(
    [
        {"$integer": "AQAAAAAAAAA="},
        {"$integer": "bad"},
        {"$integer": 5},
        {"$bytes": "aGk="},
        {"$bytes": "!!"},
        {"$float": "AAAAAAAA+H8="},
        {"$float": "AAAAAAAA8D8="},  # 1.0: a $float holding a normal number is invalid
        {"$set": []},
        {"$map": []},
        {"$unknown": 1},
        {"$commitTs": None},
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    _specials,
)
_field_names = st.one_of(
    st.sampled_from(["body", "author", "n", "seq", "_id", "$bad", "", "x" * 1025]),
    st.text(max_size=8),
)
values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_field_names, inner, max_size=4)
    ),
    max_leaves=12,
)
big_values = st.one_of(
    st.builds(Big, st.sampled_from([1_100_000, 5_000_000])),
    st.builds(Deep, st.sampled_from([70, 200, 10_000]), st.booleans()),
)
args = st.one_of(
    st.dictionaries(_field_names, values, max_size=3).map(lambda d: [d]),
    st.dictionaries(_field_names, values, max_size=3),
    st.fixed_dictionaries({"body": st.text(max_size=30)}).map(lambda d: [d]),
    values,  # anything at all: a bare special, a number, a list of many
    big_values,
    big_values.map(lambda v: [{"body": v}]),
)

# -- function paths ---------------------------------------------------------------------------

udf_paths = st.one_of(
    st.sampled_from(
        [
            "fuzz:send",
            "fuzz:list",
            "fuzz:beat",
            "fuzz:act",
            "fuzz:secret",
            "fuzz.js:list",
            "fuzz",
            "missing:fn",
            "a/:b",
            "/abs:x",
            "fuzz:",
            ":",
            "_system/x:y",
        ]
    ),
    st.text(max_size=30),
    st.builds(Big, st.sampled_from([2_000, 100_000]), st.just("p")),
)

# -- sync protocol frames ---------------------------------------------------------------------

#: A placeholder the runner replaces with the socket's right next version (so that deeper
#: paths are reached too, not only the version check).
RIGHT = "@@RIGHT_VERSION@@"
_versions = st.one_of(
    st.just(RIGHT),
    st.just(RIGHT),
    st.just(RIGHT),
    st.integers(min_value=-2, max_value=2**33),
    st.text(max_size=3),
)
_query_ids = st.one_of(st.integers(min_value=0, max_value=50), st.integers(), st.text(max_size=3))
_request_ids = st.one_of(st.integers(min_value=0, max_value=2**32 + 5), st.floats(), st.none())

_add = st.fixed_dictionaries(
    {"type": st.just("Add"), "queryId": _query_ids, "udfPath": udf_paths, "args": args},
    optional={
        "journal": st.one_of(st.none(), st.text(max_size=10)),
        "componentPath": st.one_of(st.none(), st.text(max_size=10)),
    },
)
_remove = st.fixed_dictionaries({"type": st.just("Remove"), "queryId": _query_ids})
_modification = st.one_of(_add, _add, _remove, values)

modify_query_set = st.fixed_dictionaries(
    {
        "type": st.just("ModifyQuerySet"),
        "baseVersion": _versions,
        "newVersion": _versions,
        "modifications": st.one_of(
            st.lists(_modification, max_size=6),
            st.integers(min_value=50, max_value=400).map(
                lambda n: [
                    {
                        "type": "Add",
                        "queryId": 1000 + i,
                        "udfPath": "fuzz:list",
                        "args": [{"tag": float(i)}],
                    }
                    for i in range(n)
                ]
            ),
            values,
        ),
    }
)
mutation = st.fixed_dictionaries(
    {"type": st.just("Mutation"), "requestId": _request_ids, "udfPath": udf_paths, "args": args},
    optional={"componentPath": st.one_of(st.none(), st.text(max_size=10))},
)
action = mutation.map(lambda m: {**m, "type": "Action"})
# -- tokens: signed like the real issuer's, but every one of them wrong -------------------------

#: The provider the fuzzed deployment trusts (keys inline: no JWKS server to fetch from). The
#: fuzz never makes a good token, so no sign-in may ever succeed.
FUZZ_ISSUER = "https://issuer.fuzz.pyconvex.test"
_ISSUER_KEY = new_key("RS256")
_OTHER_KEY = new_key("RS256")
FUZZ_PROVIDER = {
    "type": "custom_jwt",
    "issuer": FUZZ_ISSUER,
    "application_id": "fuzz",
    "algorithm": "RS256",
    "jwks": {"keys": [public_jwk(_ISSUER_KEY, "k1", "RS256")]},
}


def _signed(claims: dict[str, Any], key: Any, alg: str = "RS256", kid: str = "k1") -> str:
    base = {"iss": FUZZ_ISSUER, "sub": "fuzzer", "aud": "fuzz", "iat": 1_700_000_000,
            "exp": 4_000_000_000}  # fmt: skip
    return jwt.encode({**base, **claims}, key, algorithm=alg, headers={"kid": kid})


def _bad_token(kind: str, text: str) -> Any:
    good_shape = _signed({"name": text}, _ISSUER_KEY)
    if kind == "re-signed":  # the right claims, another key
        return _signed({"name": text}, _OTHER_KEY)
    if kind == "truncated":
        return good_shape[: max(1, len(good_shape) - 1 - len(text) % 40)]
    if kind == "tampered":  # a claim changed after signing
        head, body, sig = good_shape.split(".")
        return f"{head}.{body[:-2]}AA.{sig}"
    if kind == "expired":
        return _signed({"exp": 1_700_000_100}, _ISSUER_KEY)
    if kind == "wrong-audience":
        return _signed({"aud": text or "other"}, _ISSUER_KEY)
    if kind == "alg-none":
        return jwt.encode({"iss": FUZZ_ISSUER, "sub": "x", "aud": "fuzz"}, None, algorithm="none")
    if kind == "hmac":
        return _signed({}, b"a shared secret that is not a key of the provider", "HS256")
    if kind == "oversized":
        return Big(300_000)
    return text


bad_tokens = st.builds(
    _bad_token,
    st.sampled_from(
        [
            "re-signed",
            "truncated",
            "tampered",
            "expired",
            "wrong-audience",
            "alg-none",
            "hmac",
            "oversized",
            "random",
        ]
    ),
    st.text(max_size=30),
)
authenticate_user = st.fixed_dictionaries(
    {"type": st.just("Authenticate"), "baseVersion": _versions, "tokenType": st.just("User"),
     "value": bad_tokens},
)  # fmt: skip

authenticate = st.fixed_dictionaries(
    {
        "type": st.just("Authenticate"),
        "baseVersion": _versions,
        "tokenType": st.sampled_from(["None", "None", "Admin", "User", "Bogus"]),
        "value": st.one_of(st.none(), st.text(max_size=20), st.builds(Big, st.just(200_000))),
    },
    optional={"impersonating": values},
)
connect = st.fixed_dictionaries(
    {
        "type": st.just("Connect"),
        "sessionId": st.one_of(st.text(max_size=10), values),
        "connectionCount": values,
        "maxObservedTimestamp": values,
    },
)
event = st.fixed_dictionaries({"type": st.just("Event"), "eventType": values, "event": values})
junk = st.one_of(
    st.builds(Raw, st.text(max_size=50)),
    st.builds(Raw, st.sampled_from(["", "{", "[1,2", "null", "1e999999", "NaN", '{"type":'])),
    values,
    st.fixed_dictionaries(
        {"type": st.one_of(st.text(max_size=10), st.builds(Big, st.just(5_000_000)))}
    ),
    st.builds(Deep, st.just(10_000), st.booleans()),
)

#: Frame strategies, drawn from with these weights (a kind may appear more than once).
FRAME_KINDS: list[st.SearchStrategy[Any]] = [
    modify_query_set,
    modify_query_set,
    modify_query_set,
    mutation,
    mutation,
    mutation,
    action,
    authenticate,
    authenticate_user,
    authenticate_user,
    connect,
    event,
    junk,
]
frames = st.one_of(*FRAME_KINDS)

# -- HTTP requests ----------------------------------------------------------------------------

#: Header strategies for HTTP requests (the auth helper adds bearer tokens here).
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
HEADER_KINDS: list[st.SearchStrategy[dict[str, str]]] = [
    st.just({}),
    st.just({}),
    st.builds(lambda v: {"Authorization": f"Convex {v}"}, _header_text),
    st.builds(lambda v: {"Authorization": f"Bearer {v}"}, _header_text),
    st.builds(lambda v: {"Authorization": v}, _header_text),
    bad_tokens.filter(lambda t: isinstance(t, str) and t.isascii() and t.isprintable()).map(
        lambda t: {"Authorization": f"Bearer {t}"}
    ),
]
http_endpoints = st.sampled_from(
    [
        ("POST", "/api/query"),
        ("POST", "/api/mutation"),
        ("POST", "/api/action"),
        ("POST", "/api/function"),
        ("POST", "/api/query_batch"),
        ("POST", "/api/query_at_ts"),
        ("POST", "/api/run/fuzz/send"),
        ("GET", "/api/run/fuzz/send"),
        ("GET", "/api/query"),
        ("POST", "/api/_pyconvex/env"),
        ("GET", "/api/_pyconvex/stats"),
    ]
)
http_bodies = st.one_of(
    st.fixed_dictionaries(
        {"path": udf_paths, "args": args},
        optional={"format": st.sampled_from(["json", "convex_encoded_json", "xml", 5])},
    ),
    st.fixed_dictionaries(
        {"queries": st.lists(st.fixed_dictionaries({"path": udf_paths, "args": args}), max_size=3)}
    ),
    st.fixed_dictionaries({"path": udf_paths, "args": args, "ts": values}),
    st.fixed_dictionaries({"args": args}),
    junk,
    st.builds(Big, st.just(17 * 1024 * 1024)),
)
http_requests = st.tuples(http_endpoints, http_bodies, st.one_of(*HEADER_KINDS))
