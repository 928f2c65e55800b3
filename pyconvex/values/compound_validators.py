"""The container validators: array, object, record and union.

>>> from pyconvex.values.validators import v
>>> v.array(v.float64()).validate((1, 2.5))
[1.0, 2.5]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyconvex.values.scalar_validators import LiteralValidator
from pyconvex.values.validator import (
    WHERE,
    IdResolver,
    Mismatch,
    Validator,
    quote,
    require_validator,
)
from pyconvex.values.value import UNSET, Value, check_field_name, is_good_field_name, short_repr


class ArrayValidator(Validator):
    """``v.array(item)``: a list (or tuple) whose every item matches ``item``.

    >>> v.array(v.float64()).validate((1, 2.5))
    [1.0, 2.5]
    """

    __slots__ = ("item",)
    kind = "array"

    def __init__(self, item: Validator) -> None:
        super().__init__()
        require_validator(item, "v.array(item)")
        self.item = item

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is not list and not isinstance(value, list | tuple):
            raise self._fail(value)
        check = self.item._check
        out: list[Value] = []
        append = out.append
        for i, element in enumerate(value):
            try:
                append(check(element, ids))
            except Mismatch as e:
                raise e.at(f"[{i}]") from None
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.item.to_json()}

    def _source(self) -> str:
        return f"v.array({self.item!r})"

    def display(self) -> str:
        return f"v.array({self.item.display()})"

    def _params(self) -> tuple[Any, ...]:
        return (self.item,)


class ObjectValidator(Validator):
    """``v.object({...})``: a dict with exactly these fields (optional ones may be missing).

    Fields set to ``UNSET`` count as missing and are dropped::

        >>> shape = v.object({"user": v.string(), "note": v.optional(v.string())})
        >>> shape.validate({"user": "ada", "note": UNSET})
        {'user': 'ada'}
        >>> shape.fields["note"].is_optional
        True
    """

    __slots__ = ("_required", "_sorted", "fields")
    kind = "object"

    def __init__(self, fields: dict[str, Validator]) -> None:
        super().__init__()
        for name, field in fields.items():
            problem = check_field_name(name)
            if problem is not None:
                raise TypeError(f"v.object(): {problem}")
            require_validator(field, f'v.object() field "{name}"')
        self.fields: dict[str, Validator] = dict(fields)
        self._sorted = tuple(sorted(self.fields))
        self._required = tuple(name for name, f in self.fields.items() if not f.is_optional)

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value)
        fields = self.fields
        out: dict[str, Value] = {}
        try:
            for key, item in value.items():
                validator = fields.get(key)
                if validator is None:
                    if item is UNSET:
                        continue
                    raise self._unexpected(key, value)
                if item is UNSET:
                    continue
                out[key] = validator._check(item, ids)
        except Mismatch:
            self._first_mismatch(value, ids)
            raise
        if len(out) != len(fields):
            for name in self._required:
                if name not in out:
                    self._first_mismatch(value, ids)
        return out

    def _first_mismatch(self, value: dict[Any, Any], ids: IdResolver | None) -> None:
        """Raise the mismatch Convex reports first: its fields in name order (a wrong value
        or a missing field), then extra fields in name order."""
        fields = self.fields
        for name in self._sorted:
            item = value.get(name, UNSET)
            validator = fields[name]
            if item is UNSET:
                if not validator.is_optional:
                    raise Mismatch(
                        f'Object{WHERE} is missing the required field "{name}" ({validator!r})',
                        self,
                        value,
                        "missing",
                        field=name,
                    )
                continue
            try:
                validator._check(item, ids)
            except Mismatch as e:
                raise e.at(f".{name}") from None
        for key in sorted(value, key=str):
            if key not in fields and value[key] is not UNSET:
                raise self._unexpected(key, value)

    def _unexpected(self, key: object, value: object) -> Mismatch:
        allowed = ", ".join(f'"{name}"' for name in self.fields)
        shown = f'"{key}"' if type(key) is str else short_repr(key)
        return Mismatch(
            f"Object{WHERE} has an unexpected field {shown} "
            + (f"(allowed fields: {allowed})" if allowed else "(it allows no fields)"),
            self,
            value,
            "extra",
            field=str(key),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "value": {
                name: {"fieldType": field.to_json(), "optional": field.is_optional}
                for name, field in self.fields.items()
            },
        }

    def _source(self) -> str:
        inner = ", ".join(f"{quote(name)}: {field!r}" for name, field in self.fields.items())
        return f"v.object({{{inner}}})"

    def display(self) -> str:
        inner = ", ".join(f"{name}: {_field_display(self.fields[name])}" for name in self._sorted)
        return f"v.object({{{inner}}})"

    def _params(self) -> tuple[Any, ...]:
        return (frozenset(self.fields.items()),)


_RECORD_KEY_KINDS = ("string", "id")


class RecordValidator(Validator):
    """``v.record(keys, values)``: a dict with any field names matching ``keys``.

    >>> v.record(v.string(), v.float64()).validate({"a": 1})
    {'a': 1.0}
    """

    __slots__ = ("keys", "values")
    kind = "record"

    def __init__(self, keys: Validator, values: Validator) -> None:
        super().__init__()
        require_validator(keys, "v.record(keys, values) keys")
        require_validator(values, "v.record(keys, values) values")
        if not _is_string_like(keys):
            raise TypeError(
                f"v.record() keys must be v.string(), v.id(...), a string v.literal(...) or a "
                f"union of those, got {keys!r}"
            )
        if keys.is_optional or values.is_optional:
            raise TypeError("v.record() keys and values cannot be optional")
        self.keys = keys
        self.values = values

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value)
        try:
            return self._check_items(value.items(), value, ids)
        except Mismatch:
            # Convex reports the first failing field in name order.
            self._check_items(sorted(value.items(), key=lambda kv: str(kv[0])), value, ids)
            raise

    def _check_items(
        self, items: Iterable[tuple[Any, Any]], value: object, ids: IdResolver | None
    ) -> dict[str, Value]:
        check_key = self.keys._check
        check_value = self.values._check
        out: dict[str, Value] = {}
        for key, item in items:
            if item is UNSET:
                continue
            if not is_good_field_name(key):
                raise Mismatch(
                    f"Object{WHERE} has an invalid field name: {check_field_name(key)}",
                    self,
                    value,
                )
            try:
                checked_key = check_key(key, ids)
            except Mismatch as e:
                bad_key = Mismatch(
                    f"Field name {quote(key)} of the record{WHERE} must be {self.keys!r}",
                    e.validator,
                    e.value,
                    e.kind,
                    e.field,
                    e.table,
                )
                bad_key.convex_segments = [*e.convex_segments, ".keys()"]
                raise bad_key from None
            try:
                out[checked_key] = check_value(item, ids)  # type: ignore[index]
            except Mismatch as e:
                raise e.at(f".{key}", ".values()") from None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "keys": self.keys.to_json(),
            "values": {"fieldType": self.values.to_json(), "optional": False},
        }

    def _source(self) -> str:
        return f"v.record({self.keys!r}, {self.values!r})"

    def display(self) -> str:
        return f"v.record({self.keys.display()}, {self.values.display()})"

    def _params(self) -> tuple[Any, ...]:
        return (self.keys, self.values)


def _is_string_like(validator: Validator) -> bool:
    if validator.kind in _RECORD_KEY_KINDS:
        return True
    if isinstance(validator, LiteralValidator):
        return type(validator.value) is str
    if isinstance(validator, UnionValidator):
        return all(_is_string_like(m) for m in validator.members)
    return False


class UnionValidator(Validator):
    """``v.union(a, b, ...)``: a value matching any member (the first match wins).

    >>> v.union(v.string(), v.null()).validate(None) is None
    True
    """

    __slots__ = ("members",)
    kind = "union"

    def __init__(self, *members: Validator) -> None:
        super().__init__()
        for member in members:
            require_validator(member, "v.union() member")
        self.members: tuple[Validator, ...] = members

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        failures: list[tuple[Validator, Mismatch]] = []
        for member in self.members:
            try:
                return member._check(value, ids)
            except Mismatch as e:
                failures.append((member, e))
        # When exactly one member has the value's shape (the only object member for a dict, ...),
        # its deeper error says more than "must be v.union(...)".
        shaped = [(m, e) for m, e in failures if _same_shape(m, value)]
        if len(self.members) == 1:
            raise failures[0][1]  # Convex checks a union of one as its member
        if len(shaped) == 1:
            raise shaped[0][1].reported_as(self, value)
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}

    def _source(self) -> str:
        return f"v.union({', '.join(repr(m) for m in self.members)})"

    def display(self) -> str:
        return f"v.union({', '.join(m.display() for m in self.members)})"

    def _params(self) -> tuple[Any, ...]:
        return self.members


def _same_shape(validator: Validator, value: object) -> bool:
    kind = validator.kind
    if isinstance(value, dict):
        return kind == "object" or kind == "record"
    if isinstance(value, list | tuple):
        return kind == "array"
    return False


def _field_display(validator: Validator) -> str:
    shown = validator.display()
    return f"v.optional({shown})" if validator.is_optional else shown
