"""Generated code is laid out as ``ruff format`` lays it out, so it is format-clean as written.

The fuzz test renders random type expressions in every statement shape codegen writes and asks
ruff itself; the golden files are checked the same way.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from support.codegen import GOLDEN

from pyconvex.codegen.layout import code, expression
from pyconvex.codegen.model import (
    Alias,
    ClassDef,
    Field,
    Method,
    ModulePlan,
    Name,
    Statement,
    Sub,
    TypedDictDef,
    TypeExpr,
    id_of,
    literal,
    union,
)
from pyconvex.codegen.python_source import render_module

RUFF_CONFIG = "line-length = 100"


def _ruff_unformatted(directory: Path) -> str:
    (directory / "ruff.toml").write_text(RUFF_CONFIG + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_short_expressions_stay_on_one_line() -> None:
    t = union(Sub("list", (id_of("messages"),)), Name("None"))
    assert code(expression(t, col=10)) == 'list[Id[Literal["messages"]]] | None'


def test_a_long_subscript_puts_its_items_on_the_next_line_then_one_per_line() -> None:
    values = [f"value_number_{i:02}" for i in range(4)]
    assert code(expression(literal(*values), col=60)) == (
        "Literal[\n"
        '    "value_number_00", "value_number_01", "value_number_02", "value_number_03"\n'
        "]"
    )
    many = literal(*(f"value_number_{i:02}" for i in range(6)))
    assert code(expression(many, col=60)).splitlines() == [
        "Literal[",
        *(f'    "value_number_{i:02}",' for i in range(6)),
        "]",
    ]


def test_a_long_union_is_parenthesized_with_one_member_per_line() -> None:
    t = union(Sub("list", (literal(*(f"v{i:020}" for i in range(3))),)), Name("None"))
    assert code(expression(t, col=10)).splitlines() == [
        "(",
        f'    list[Literal["{"v" + "0" * 20}", "v{1:020}", "v{2:020}"]] | None',
        ")",
    ]


def _word(rnd: random.Random, low: int, high: int) -> str:
    return "w" + "".join(rnd.choice("abcdefgh_") for _ in range(rnd.randint(low, high)))


def _type(rnd: random.Random, depth: int = 0) -> TypeExpr:
    r = rnd.random()
    if depth > 3 or r < 0.3:
        names = ["str", "float", "None", "Any", "Int64", "X" + _word(rnd, 3, 40)]
        return Name(rnd.choice(names))
    if r < 0.45:
        return literal(*(_word(rnd, 3, 25) for _ in range(rnd.randint(1, 6))))
    if r < 0.55:
        return id_of(_word(rnd, 3, 60))
    if r < 0.7:
        return Sub("list", (_type(rnd, depth + 1),))
    if r < 0.8:
        return Sub("dict", (Name("str"), _type(rnd, depth + 1)))
    return union(*(_type(rnd, depth + 1) for _ in range(rnd.randint(2, 4))))


def _random_module(seed: int) -> ModulePlan:
    rnd = random.Random(seed)
    statements: list[Statement] = []
    for i in range(30):
        kind = rnd.random()
        if kind < 0.4:
            fields = tuple(
                Field(
                    _word(rnd, 2, 30) if rnd.random() < 0.9 else f"my-{_word(rnd, 2, 9)}",
                    _type(rnd),
                    rnd.random() < 0.7,
                )
                for _ in range(rnd.randint(0, 5))
            )
            statements.append(TypedDictDef(f"T{i}", fields, total=rnd.random() < 0.8))
        elif kind < 0.7:
            statements.append(Alias(f"A{i}{_word(rnd, 3, 40)}", _type(rnd)))
        else:
            params: list[TypeExpr] = [
                id_of(_word(rnd, 3, 40)),
                literal(_word(rnd, 3, 40)),
                Name("X" * rnd.randint(3, 30)),
            ]
            methods = tuple(
                (
                    Method(
                        _word(rnd, 3, 12),
                        tuple((_word(rnd, 2, 10), rnd.choice(params)) for _ in range(3)),
                        rnd.choice([union(id_of(_word(rnd, 3, 30)), Name("None")), Name("Y")]),
                        rnd.random() < 0.5,
                        "overload",
                    ),
                )
                for _ in range(3)
            )
            fields_ = tuple((_word(rnd, 2, 20), _type(rnd)) for _ in range(3))
            statements.append(ClassDef(f"C{i}", ("Protocol",), "A class.", fields_, methods))
    return ModulePlan("A module.\n\nOf random statements.\n", (tuple(statements),), ())


def test_random_modules_are_ruff_format_clean(tmp_path: Path) -> None:
    for seed in range(12):
        (tmp_path / f"module_{seed}.py").write_text(render_module(_random_module(seed)))
    assert _ruff_unformatted(tmp_path) == ""


def test_golden_files_are_ruff_format_clean(tmp_path: Path) -> None:
    for path in GOLDEN.glob("*/*.py"):
        (tmp_path / f"{path.parent.name}_{path.name}").write_text(path.read_text())
    assert _ruff_unformatted(tmp_path) == ""
