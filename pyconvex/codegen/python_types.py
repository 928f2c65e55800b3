"""Validators as Python type expressions; nested objects become TypedDicts of their own.

>>> from pyconvex.values.validators import v
>>> from pyconvex.codegen.names import Names
>>> types = TypeBuilder(Names())
>>> source(types.type_of(v.array(v.object({"user": v.string()})), "MessagesReactions"))
'list[MessagesReactionsItem]'
>>> [d.name for d in types.defs]
['MessagesReactionsItem']
"""

from __future__ import annotations

from collections.abc import Mapping

from pyconvex.codegen.model import (
    ANY,
    NONE,
    Field,
    Name,
    Sub,
    TypedDictDef,
    TypeExpr,
    id_of,
    literal,
    source,
    union,
)
from pyconvex.codegen.names import Names, pascal_case
from pyconvex.values.validators import (
    ArrayValidator,
    IdValidator,
    IntValidator,
    LiteralValidator,
    ObjectValidator,
    RecordValidator,
    UnionValidator,
    Validator,
)

__all__ = ["TypeBuilder", "source"]

_SCALARS: dict[str, TypeExpr] = {
    "string": Name("str"),
    "float64": Name("float"),
    "int64": Name("Int64"),
    "boolean": Name("bool"),
    "bytes": Name("bytes"),
    "null": NONE,
    "any": ANY,
}


class TypeBuilder:
    """Turns validators into type expressions for one generated module.

    Each distinct nested object validator becomes one TypedDict, named after where it first
    appears (``hint``); ``defs`` lists them in an order where each comes before its users.
    ``known`` maps object validators that already have a name (a table's ``MessagesDoc``).
    """

    __slots__ = ("_objects", "defs", "known", "names")

    def __init__(self, names: Names, known: Mapping[Validator, str] | None = None) -> None:
        self.names = names
        self.known: Mapping[Validator, str] = known or {}
        self.defs: list[TypedDictDef] = []
        self._objects: dict[tuple[Validator, bool], str] = {}

    def type_of(self, validator: Validator, hint: str, *, received: bool = False) -> TypeExpr:
        """The type of values ``validator`` accepts (optionality is the caller's business).
        ``received``: as a caller receives them (a function's result), where an ``int`` is a
        float64 on the wire and arrives as a ``float``."""
        if isinstance(validator, IntValidator):  # kind "float64", but handed over as int
            return Name("float" if received else "int")
        scalar = _SCALARS.get(validator.kind)
        if scalar is not None:
            return scalar
        if isinstance(validator, IdValidator):
            return id_of(validator.table)
        if isinstance(validator, LiteralValidator):
            value = validator.value
            if isinstance(value, str | bool):
                return literal(value)
            return Name("float") if isinstance(value, float) else Name("Int64")
        if isinstance(validator, ArrayValidator):
            return Sub("list", (self.type_of(validator.item, f"{hint}Item", received=received),))
        if isinstance(validator, RecordValidator):
            keys = self.type_of(validator.keys, f"{hint}Key", received=received)
            values = self.type_of(validator.values, f"{hint}Value", received=received)
            return Sub("dict", (keys, values))
        if isinstance(validator, UnionValidator):
            objects = sum(isinstance(m, ObjectValidator) for m in validator.members)
            return union(
                *(
                    self.type_of(m, f"{hint}{i}" if objects > 1 else hint, received=received)
                    for i, m in enumerate(validator.members, 1)
                )
            )
        if isinstance(validator, ObjectValidator):
            return Name(self.object_name(validator, hint, received=received))
        return ANY

    def take_defs(self) -> list[TypedDictDef]:
        """The TypedDicts defined since the last call (to write before their first user)."""
        defs, self.defs = self.defs, []
        return defs

    def object_name(self, validator: ObjectValidator, hint: str, *, received: bool = False) -> str:
        """The TypedDict of an object validator, defined on first use (one of its own as
        received, if it holds ``int`` s: see :meth:`type_of`)."""
        key = validator.as_required()
        wire = received and _holds_int(key)
        name = (None if wire else self.known.get(key)) or self._objects.get((key, wire))
        if name is None:
            name = self.names.take(hint)
            self._objects[(key, wire)] = name
            self.defs.append(TypedDictDef(name, self.fields_of(validator, name, received=wire)))
        return name

    def fields_of(
        self, validator: ObjectValidator, hint: str, *, received: bool = False
    ) -> tuple[Field, ...]:
        """The TypedDict fields of an object validator (nested objects named ``hint<Field>``)."""
        return tuple(
            Field(
                key,
                self.type_of(f, f"{hint}{pascal_case(key)}", received=received),
                not f.is_optional,
            )
            for key, f in validator.fields.items()
        )


def _holds_int(validator: Validator) -> bool:
    """Whether an ``int`` (:class:`IntValidator`) is anywhere in ``validator``."""
    if isinstance(validator, IntValidator):
        return True
    if isinstance(validator, ObjectValidator):
        return any(map(_holds_int, validator.fields.values()))
    if isinstance(validator, ArrayValidator):
        return _holds_int(validator.item)
    if isinstance(validator, RecordValidator):
        return _holds_int(validator.values)
    if isinstance(validator, UnionValidator):
        return any(map(_holds_int, validator.members))
    return False
