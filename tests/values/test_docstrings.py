"""Every example in the values layer's docstrings runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

MODULES = ["value", "encoding", "ordering", "ids", "validators", "annotations", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module_name = "pyconvex.values" if name == "__init__" else f"pyconvex.values.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        pytest.skip(f"{module_name} not written yet")
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS, extraglobs={"math": math}, verbose=False
    )
    assert result.failed == 0
    if name != "__init__":
        assert result.attempted > 0
