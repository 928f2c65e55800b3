"""Line breaking for generated code: type expressions as libcst nodes, laid out as ruff would.

Generated modules must be ruff-format clean, so long lines are broken the way ruff breaks them
(a Prettier-style layout): a subscript that does not fit puts its contents on the next line,
one line for all of them if they fit there, else one per line with a trailing comma; a union
that does not fit is wrapped in parentheses with one member per line. The decisions become
libcst whitespace (``ParenthesizedWhitespace``), and libcst writes the code.

    >>> code(expression(Sub("list", (Name("str"),)), col=0))
    'list[str]'
"""

from __future__ import annotations

import libcst as cst

from pyconvex.codegen.model import Name, Str, Sub, TypeExpr, Union, width
from pyconvex.values.validator import quote

LINE_LENGTH = 100
INDENT = "    "
NO_SPACE = cst.SimpleWhitespace("")
SPACE = cst.SimpleWhitespace(" ")
_EMPTY = cst.Module(body=())


def code(node: cst.CSTNode) -> str:
    """The source of one node."""
    return _EMPTY.code_for_node(node)


def newline(level: int) -> cst.ParenthesizedWhitespace:
    """A line break inside brackets, then ``level`` indents past the statement's own indent."""
    return cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(),
        empty_lines=(),
        indent=True,
        last_line=cst.SimpleWhitespace(INDENT * level),
    )


def string(value: str) -> cst.SimpleString:
    """A string literal, double-quoted unless that needs more escapes (as ruff prefers)."""
    return cst.SimpleString(quote(value))


def flat(t: TypeExpr) -> cst.BaseExpression:
    """The expression on one line."""
    if isinstance(t, Name):
        return cst.Name(t.name)
    if isinstance(t, Str):
        return string(t.value)
    if isinstance(t, Sub):
        return cst.Subscript(
            cst.Name(t.base), [cst.SubscriptElement(cst.Index(flat(a))) for a in t.args]
        )
    node = flat(t.members[0])
    for m in t.members[1:]:
        node = cst.BinaryOperation(node, cst.BitOr(), flat(m))
    return node


def expression(
    t: TypeExpr, col: int, indent: int = 0, level: int = 0, suffix: int = 0, top: bool = True
) -> cst.BaseExpression:
    """``t`` laid out to fit in the line length.

    ``col``: the column it starts at; ``indent``: the column of the statement's indentation;
    ``level``: indents (past ``indent``) of lines it opens; ``suffix``: columns that must
    follow it on its last line (a ``,``); ``top``: it is a whole annotation or assignment value
    (a union there gets parentheses when it breaks).
    """
    if col + width(t) + suffix <= LINE_LENGTH or isinstance(t, Name | Str):
        return flat(t)
    if isinstance(t, Sub):
        return _subscript(t, indent, level)
    return _union(t, col, indent, level, suffix, top)


def _subscript(t: Sub, indent: int, level: int) -> cst.Subscript:
    inner = level + 1
    col = indent + len(INDENT) * inner
    args = t.args
    last = len(args) - 1
    close = newline(level)
    if len(args) == 1:
        elements = [cst.SubscriptElement(cst.Index(expression(args[0], col, indent, inner)))]
    elif col + sum(width(a) for a in args) + 2 * last <= LINE_LENGTH:
        elements = [cst.SubscriptElement(cst.Index(flat(a))) for a in args]
    else:
        elements = [
            cst.SubscriptElement(
                cst.Index(expression(a, col, indent, inner, 1, False)),
                cst.Comma(NO_SPACE, newline(inner if i < last else level)),
            )
            for i, a in enumerate(args)
        ]
        return cst.Subscript(
            cst.Name(t.base),
            elements,
            lbracket=cst.LeftSquareBracket(newline(inner)),
            rbracket=cst.RightSquareBracket(NO_SPACE),
        )
    return cst.Subscript(
        cst.Name(t.base),
        elements,
        lbracket=cst.LeftSquareBracket(newline(inner)),
        rbracket=cst.RightSquareBracket(close),
    )


def _union(
    t: Union, col: int, indent: int, level: int, suffix: int, top: bool
) -> cst.BaseExpression:
    if top:
        inner = level + 1
        inner_col = indent + len(INDENT) * inner
        body = (
            flat(t)
            if inner_col + width(t) <= LINE_LENGTH
            else _broken_union(t, inner_col, indent, inner, 0)
        )
        return body.with_changes(
            lpar=[cst.LeftParen(whitespace_after=newline(inner))],
            rpar=[cst.RightParen(whitespace_before=newline(level))],
        )
    return _broken_union(t, col, indent, level, suffix)


def _broken_union(t: Union, col: int, indent: int, level: int, suffix: int) -> cst.BaseExpression:
    members = t.members
    last = len(members) - 1
    line_col = indent + len(INDENT) * level + 2  # after "| "
    node = expression(members[0], col, indent, level, suffix if last == 0 else 0, False)
    for i, m in enumerate(members[1:], 1):
        right = expression(m, line_col, indent, level, suffix if i == last else 0, False)
        node = cst.BinaryOperation(node, cst.BitOr(newline(level), SPACE), right)
    return node


def parameters(
    params: list[tuple[str, TypeExpr]], col: int, indent: int, rest: int
) -> tuple[cst.Parameters, cst.BaseParenthesizableWhitespace]:
    """A stub method's ``(self, a: A, /)`` laid out to fit; also the whitespace after ``(``.

    ``col`` is where ``self`` starts on the ``def`` line and ``rest`` the width of what follows
    ``)`` (`` -> R: ...``). Parameters are positional-only (the ``/``) when there are any.
    """
    widths = [len("self"), *(len(n) + 2 + width(t) for n, t in params)]
    if params:
        widths.append(len("/"))
    one_line = sum(widths) + 2 * (len(widths) - 1)
    self_param = cst.Param(cst.Name("self"))
    typed = [cst.Param(cst.Name(n), cst.Annotation(flat(t))) for n, t in params]
    if not params:
        return cst.Parameters(params=[self_param]), NO_SPACE
    if col + one_line + len(")") + rest <= LINE_LENGTH:  # all on the def line
        on_def_line = cst.Parameters(
            posonly_params=[self_param, *typed], posonly_ind=cst.ParamSlash()
        )
        return on_def_line, NO_SPACE
    if indent + len(INDENT) + one_line <= LINE_LENGTH:  # all on one line of their own
        slash = cst.ParamSlash(whitespace_after=newline(0))
        return cst.Parameters(posonly_params=[self_param, *typed], posonly_ind=slash), newline(1)
    comma = cst.Comma(NO_SPACE, newline(1))
    exploded = [p.with_changes(comma=comma) for p in (self_param, *typed)]
    slash = cst.ParamSlash(cst.Comma(NO_SPACE, newline(0)), NO_SPACE)
    return cst.Parameters(posonly_params=exploded, posonly_ind=slash), newline(1)
