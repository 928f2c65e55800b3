"""Every example in the values layer's docstrings runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

from pyconvex.values import UNSET, Int64, v

MODULES = [
    "value",
    "encoding",
    "ordering",
    "ids",
    "validator",
    "scalar_validators",
    "compound_validators",
    "validators",
    "annotations",
    "__init__",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module_name = "pyconvex.values" if name == "__init__" else f"pyconvex.values.{name}"
    module = importlib.import_module(module_name)
    extras = {"math": math, "v": v, "UNSET": UNSET, "Int64": Int64}
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs=extras, verbose=False)
    assert result.failed == 0
    if name != "__init__":
        assert result.attempted > 0


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    import pyconvex.values as values

    missing = [
        name
        for name in values.__all__
        if name != "Value" and ">>>" not in (getattr(values, name).__doc__ or "")
    ]
    assert missing == []
