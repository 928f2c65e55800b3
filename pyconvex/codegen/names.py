"""Python names for generated definitions: PascalCase bases and a registry that keeps them unique.

>>> pascal_case("task_comments"), pascal_case("admin/users"), pascal_case("my-field")
('TaskComments', 'AdminUsers', 'MyField')
"""

from __future__ import annotations

import keyword
import re

_WORD = re.compile(r"[A-Za-z0-9]+")


def pascal_case(text: str) -> str:
    """``task_comments`` -> ``TaskComments``: words split on anything but letters and digits.

    A word keeps its inner capitals (``sendMessage`` -> ``SendMessage``); a leading digit gets an
    underscore so the result is an identifier.
    """
    out = "".join(w[:1].upper() + w[1:] for w in _WORD.findall(text)) or "X"
    return f"_{out}" if out[0].isdigit() else out


def is_identifier(name: str) -> bool:
    """Whether ``name`` can be written as a Python attribute or class field."""
    return name.isidentifier() and not keyword.iskeyword(name)


class Names:
    """Allocates unique names in one generated module, deterministically.

    >>> names = Names(reserved={"Any"})
    >>> names.take("Messages"), names.take("Messages"), names.take("Any")
    ('Messages', 'Messages2', 'Any2')
    """

    __slots__ = ("_taken",)

    def __init__(self, reserved: set[str] | frozenset[str] = frozenset()) -> None:
        self._taken: set[str] = set(reserved)

    def reserve(self, *names: str) -> None:
        """Mark ``names`` as used (imports, fixed names, attribute names)."""
        self._taken.update(names)

    def free(self, name: str) -> bool:
        """Whether ``name`` is still available."""
        return name not in self._taken

    def take(self, wanted: str) -> str:
        """``wanted`` if free, else ``wanted2``, ``wanted3``...; the result is now taken."""
        name = wanted
        n = 2
        while name in self._taken:
            name = f"{wanted}{n}"
            n += 1
        self._taken.add(name)
        return name
