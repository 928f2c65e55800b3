"""Function path normalisation and validation (PROTOCOL §5)."""

from __future__ import annotations

import pytest

from pyconvex.runtime.functions.function_path import is_system_path, normalize_path, split_path


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("messages:list", "messages:list"),
        ("messages.js:list", "messages:list"),  # Rust/Python after a reconnect
        ("messages", "messages:default"),  # npm HTTP client's default export
        ("messages.js", "messages:default"),
        ("dir/sub/module:fn", "dir/sub/module:fn"),
        ("dir.v2/mod:_private", "dir.v2/mod:_private"),
    ],
)
def test_normalize(raw: str, normal: str) -> None:
    assert normalize_path(raw) == normal
    assert normalize_path(normal) == normal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "module path is empty"),
        ("/abs:fn", "relative"),
        ("a//b:fn", "empty path segment"),
        ("..:fn", "at least one letter or digit"),
        ("a-b:fn", "may only contain"),
        ("messages.py:list", "without an extension"),
        ("messages:", "function name after ':' is empty"),
        ("messages:1x", "must be an identifier"),
        ("m" * 65 + ":f", "longer than 64"),
        ("m:" + "f" * 65, "longer than 64"),
    ],
)
def test_invalid_paths_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        normalize_path(raw)
    assert repr(raw) in str(info.value)


def test_split_at_the_last_colon() -> None:
    assert split_path("dir/mod.js:fn") == ("dir/mod", "fn")
    with pytest.raises(ValueError):
        split_path("a:b:c")


def test_system_paths() -> None:
    assert is_system_path("_system/cli:tables")
    assert not is_system_path("messages:list")
