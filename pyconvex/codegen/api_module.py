"""``_generated/api.py``: typed references to every function, as ``api.<module>.<function>``.

For ``messages:send`` it defines ``MessagesSendArgs`` (a TypedDict from the args validator),
``MessagesSendReturns`` (from ``returns=`` or the return annotation; ``Any`` without either)
and ``MessagesSendRef``, the ``FunctionReference`` type of ``api.messages.send``. The ``api``
and ``internal`` objects are built at import time from a table of paths and kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyconvex.codegen.data_model import ANY_DOC
from pyconvex.codegen.errors import CodegenError
from pyconvex.codegen.model import (
    ANY,
    Alias,
    ApiAssign,
    ClassDef,
    ModulePlan,
    Name,
    Statement,
    Sub,
    TypedDictDef,
    TypeExpr,
    literal,
)
from pyconvex.codegen.names import Names, is_identifier, pascal_case
from pyconvex.codegen.python_types import TypeBuilder
from pyconvex.server.functions import FunctionDefinition
from pyconvex.server.pagination import pagination_opts_validator
from pyconvex.values.validators import Validator

SOURCES = (
    ("Any", "typing"),
    ("Literal", "typing"),
    ("NotRequired", "typing"),
    ("TypeAlias", "typing"),
    ("TypedDict", "typing"),
    ("Id", "pyconvex"),
    ("Int64", "pyconvex"),
    ("FunctionReference", "pyconvex.server.references"),
    ("NoArgs", "pyconvex.server.references"),
    ("PaginationOptions", "pyconvex.server.db"),
    ("build_api", "pyconvex.server.references"),
)
KINDS = ("query", "mutation", "action")
ROOTS = (("public", "api", "_Api"), ("internal", "internal", "_Internal"))

DOC = """Typed references to the functions in convex/: ``api.<module>.<function>`` for public
functions, ``internal.<module>.<function>`` for internal ones.

    from ._generated.api import api

    await ctx.run_mutation(api.messages.send, {"body": "hi"})
"""


@dataclass(slots=True)
class _Namespace:
    """One level of ``api``: sub-namespaces and function references by attribute name."""

    where: str
    children: dict[str, _Namespace] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # attribute -> Ref alias
    paths: dict[str, str] = field(default_factory=dict)  # attribute -> function path


def _insert(root: _Namespace, fn: FunctionDefinition, ref: str) -> None:
    module, _, name = fn.path.partition(":")
    node = root
    for part in module.split("/"):
        if part in node.refs:
            raise CodegenError(
                f"{root.where}.{module.replace('/', '.')}: the module convex/{module}.py clashes "
                f"with the function {node.paths[part]}; rename one of them."
            )
        node = node.children.setdefault(part, _Namespace(f"{node.where}.{part}"))
    if name in node.children:
        raise CodegenError(
            f"{fn.path}: the function {name!r} clashes with the module "
            f"convex/{module}/{name}.py; rename one of them."
        )
    node.refs[name] = ref
    node.paths[name] = fn.path


def _namespace_classes(
    node: _Namespace, class_name: str, names: Names, out: list[Statement]
) -> None:
    fields: list[tuple[str, TypeExpr]] = []
    for attr in sorted({*node.children, *node.refs}):
        if not is_identifier(attr):
            continue  # reachable at run time with getattr(), not typed
        if attr in node.children:
            child = names.take(f"{class_name}{pascal_case(attr)}")
            _namespace_classes(node.children[attr], child, names, out)
            fields.append((attr, Name(child)))
        else:
            fields.append((attr, Name(node.refs[attr])))
    out.append(ClassDef(class_name, (), f"``{node.where}``.", tuple(fields)))


def api_plan(functions: Iterable[FunctionDefinition], known: Mapping[Validator, str]) -> ModulePlan:
    """The plan of ``api.py``; ``known`` maps table document validators to their data model
    names (``MessagesDoc``), which results then use."""
    defs = sorted((f for f in functions if f.kind in KINDS), key=lambda f: f.path)
    known = {pagination_opts_validator: "PaginationOptions", **known}
    names = Names({name for name, _ in SOURCES} | set(known.values()) | {"api", "internal"})
    for fn in defs:  # a class attribute must not shadow an alias used in the same class body
        module, _, fn_name = fn.path.partition(":")
        names.reserve(fn_name, *module.split("/"))
    types = TypeBuilder(names, known)
    per_function: list[Statement] = []
    roots = {vis: _Namespace(root) for vis, root, _ in ROOTS}
    for fn in defs:
        args_name, returns_name, ref_name = _function_names(fn, names)
        args: Statement
        if fn.args is None:
            args = Alias(args_name, ANY_DOC)
        elif not fn.args.fields:
            args = Alias(args_name, Name("NoArgs"))
        else:
            args = TypedDictDef(args_name, types.fields_of(fn.args, args_name))
        per_function.extend((*types.take_defs(), args))
        returns = (
            ANY if fn.returns is None else types.type_of(fn.returns, returns_name, received=True)
        )
        ref = Sub("FunctionReference", (literal(fn.kind), Name(args_name), Name(returns_name)))
        per_function.extend(
            (*types.take_defs(), Alias(returns_name, returns), Alias(ref_name, ref))
        )
        _insert(roots[fn.visibility], fn, ref_name)
    namespaces: list[Statement] = []
    assigns: list[Statement] = []
    for visibility, root, class_name in ROOTS:
        _namespace_classes(roots[visibility], class_name, names, namespaces)
        table = tuple((f.path, f.kind) for f in defs if f.visibility == visibility)
        assigns.append(ApiAssign(root, class_name, visibility, table))
    blocks = tuple(b for b in (tuple(per_function), tuple(namespaces), tuple(assigns)) if b)
    sources = SOURCES + tuple(
        (name, ".data_model") for name in sorted(set(known.values()) - {"PaginationOptions"})
    )
    # Type-checking only: api.py must import even while data_model.py has changed under it
    # (a table renamed), or the functions importing it could not load to regenerate it.
    return ModulePlan(DOC, blocks, sources, type_only=(".data_model",))


def _function_names(fn: FunctionDefinition, names: Names) -> tuple[str, str, str]:
    base = pascal_case(fn.path.replace(":", "/"))
    candidate, n = base, 2
    while not all(names.free(f"{candidate}{s}") for s in ("Args", "Returns", "Ref")):
        candidate, n = f"{base}{n}", n + 1
    return (
        names.take(f"{candidate}Args"),
        names.take(f"{candidate}Returns"),
        names.take(f"{candidate}Ref"),
    )
