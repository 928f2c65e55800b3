"""``_generated/data_model.py``: a TypedDict per table of ``convex/schema.py``.

For a table ``messages`` with an object document: ``MessagesFields`` (what ``db.insert`` takes),
``MessagesDoc`` (those fields plus ``_id`` and ``_creationTime``: what reads return) and
``MessagesPatch`` (what ``db.patch`` takes). A table whose document is a union of objects gets
one class per variant and aliases of their union; a ``v.any()`` table is ``dict[str, Any]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyconvex.codegen.model import (
    ANY,
    Alias,
    Field,
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
from pyconvex.codegen.names import Names, pascal_case
from pyconvex.codegen.python_types import TypeBuilder
from pyconvex.server.schema import RESERVED_INDEXES, SchemaDefinition
from pyconvex.values.validators import ObjectValidator, UnionValidator, Validator, v

ANY_DOC: TypeExpr = Sub("dict", (Name("str"), ANY))
SOURCES = (
    ("Any", "typing"),
    ("Literal", "typing"),
    ("Never", "typing"),
    ("NotRequired", "typing"),
    ("TypeAlias", "typing"),
    ("TypedDict", "typing"),
    ("Id", "pyconvex"),
    ("Int64", "pyconvex"),
    ("Unset", "pyconvex.values"),
)
IMPORTED = frozenset(name for name, _ in SOURCES)


@dataclass(frozen=True, slots=True)
class TableTypes:
    """The generated names of one table and what ``ctx.db`` needs to know about it."""

    table: str
    doc: str
    fields: str
    patch: str
    query: str
    indexes: tuple[str, ...]
    search_indexes: tuple[str, ...]


def table_types(schema: SchemaDefinition | None) -> list[TableTypes]:
    """The tables of ``schema`` sorted by name, each with unique generated names."""
    if schema is None:
        return []
    out = []
    bases = Names()  # bases only appear with a suffix (Doc, Fields...): no clash with imports
    for table in sorted(schema.tables):
        definition = schema.tables[table]
        base = bases.take(pascal_case(table))
        indexes = sorted({*RESERVED_INDEXES, *(i.name for i in definition.indexes)})
        search = sorted(s.name for s in definition.search_indexes)
        out.append(
            TableTypes(
                table,
                f"{base}Doc",
                f"{base}Fields",
                f"{base}Patch",
                f"{base}Query",
                tuple(indexes),
                tuple(search),
            )
        )
    return out


def _doc_validator(table: str, fields: ObjectValidator) -> ObjectValidator:
    return v.object({**fields.fields, "_id": v.id(table), "_creationTime": v.float64()})


def _object_variants(document: Validator) -> list[ObjectValidator] | None:
    if isinstance(document, ObjectValidator):
        return [document]
    if isinstance(document, UnionValidator) and all(
        isinstance(m, ObjectValidator) for m in document.members
    ):
        return [m for m in document.members if isinstance(m, ObjectValidator)]
    return None


def _patch_field(field: Field) -> Field:
    # Patch types are total=False; an optional field may be removed with UNSET.
    return Field(field.key, field.type if field.required else union(field.type, Name("Unset")))


def _system_fields(table: str) -> tuple[Field, ...]:
    return (Field("_id", id_of(table)), Field("_creationTime", Name("float")))


def _table_statements(
    t: TableTypes, document: Validator, names: Names, known: dict[Validator, str]
) -> list[Statement]:
    variants = _object_variants(document)
    if variants is None:
        return [Alias(t.fields, ANY_DOC), Alias(t.doc, ANY_DOC), Alias(t.patch, ANY_DOC)]
    types = TypeBuilder(names)
    out: list[Statement] = []
    many = len(variants) > 1
    fields_names, doc_names = [], []
    for i, variant in enumerate(variants, 1):
        suffix = str(i) if many else ""
        fields_name = names.take(f"{t.fields}{suffix}") if many else t.fields
        doc_name = names.take(f"{t.doc}{suffix}") if many else t.doc
        fields = types.fields_of(variant, f"{t.fields.removesuffix('Fields')}{suffix}")
        out.extend(types.take_defs())
        what = f'document of "{t.table}"' + (f" (variant {i})" if many else "")
        out.append(
            TypedDictDef(
                fields_name,
                fields,
                doc=f"A {what} without its system fields: what db.insert takes.",
            )
        )
        out.append(
            TypedDictDef(
                doc_name,
                _system_fields(t.table),
                base=fields_name,
                doc=f"A {what}, as db.get and queries return it.",
            )
        )
        if not many:
            out.append(
                TypedDictDef(
                    t.patch,
                    tuple(_patch_field(f) for f in fields),
                    total=False,
                    doc=f"The fields db.patch may set on a {what} (UNSET removes optional ones).",
                )
            )
        known[variant.as_required()] = fields_name
        known[_doc_validator(t.table, variant)] = doc_name
        fields_names.append(Name(fields_name))
        doc_names.append(Name(doc_name))
    if many:
        out.append(Alias(t.fields, union(*fields_names)))
        out.append(Alias(t.doc, union(*doc_names)))
        out.append(Alias(t.patch, ANY_DOC))
    return out


def data_model_plan(
    schema: SchemaDefinition | None, tables: list[TableTypes]
) -> tuple[ModulePlan, dict[Validator, str]]:
    """The module plan, and the object validators its TypedDicts stand for (for ``api.py``)."""
    known: dict[Validator, str] = {}
    if schema is None:
        doc = (
            "Document types of convex/: there is no convex/schema.py, so documents are plain "
            "dicts.\n\nAdd a schema (`schema = define_schema({...})`) to get a TypedDict per "
            "table.\n"
        )
        blocks: tuple[tuple[Statement, ...], ...] = (
            (Alias("TableNames", Name("str")), Alias("Doc", ANY_DOC)),
        )
        return ModulePlan(doc, blocks, SOURCES), known
    names = Names(IMPORTED | {"TableNames"})
    for t in tables:
        names.reserve(t.doc, t.fields, t.patch)
    table_names: TypeExpr = literal(*(t.table for t in tables)) if tables else Name("Never")
    statements: list[Statement] = []
    for t in tables:
        statements.extend(_table_statements(t, schema.tables[t.table].document, names, known))
    doc = (
        "Document types of convex/schema.py: a TypedDict per table.\n\n"
        "``<Table>Doc`` is a stored document (with ``_id`` and ``_creationTime``),\n"
        "``<Table>Fields`` what ``db.insert`` and ``db.replace`` take, ``<Table>Patch`` what\n"
        "``db.patch`` takes.\n"
    )
    blocks = ((Alias("TableNames", table_names),), tuple(statements))
    return ModulePlan(doc, blocks, SOURCES), known
