"""The container validators: array, object, record and union.

>>> from pyconvex.values.validators import v
>>> v.array(v.float64()).validate((1, 2.5))
[1.0, 2.5]
"""

from __future__ import annotations

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

    __slots__ = ("_required", "fields")
    kind = "object"

    def __init__(self, fields: dict[str, Validator]) -> None:
        super().__init__()
        for name, field in fields.items():
            problem = check_field_name(name)
            if problem is not None:
                raise TypeError(f"v.object(): {problem}")
            require_validator(field, f'v.object() field "{name}"')
        self.fields: dict[str, Validator] = dict(fields)
        self._required = tuple(name for name, f in self.fields.items() if not f.is_optional)

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value)
        fields = self.fields
        out: dict[str, Value] = {}
        for key, item in value.items():
            validator = fields.get(key)
            if validator is None:
                if item is UNSET:
                    continue
                raise self._unexpected(key)
            if item is UNSET:
                continue
            try:
                out[key] = validator._check(item, ids)
            except Mismatch as e:
                raise e.at(f".{key}") from None
        if len(out) != len(fields):
            for name in self._required:
                if name not in out:
                    raise Mismatch(
                        f'Object{WHERE} is missing the required field "{name}" ({fields[name]!r})'
                    )
        return out

    def _unexpected(self, key: object) -> Mismatch:
        allowed = ", ".join(f'"{name}"' for name in self.fields)
        shown = f'"{key}"' if type(key) is str else short_repr(key)
        return Mismatch(
            f"Object{WHERE} has an unexpected field {shown} "
            + (f"(allowed fields: {allowed})" if allowed else "(it allows no fields)")
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
        check_key = self.keys._check
        check_value = self.values._check
        out: dict[str, Value] = {}
        for key, item in value.items():
            if item is UNSET:
                continue
            if not is_good_field_name(key):
                raise Mismatch(f"Object{WHERE} has an invalid field name: {check_field_name(key)}")
            try:
                checked_key = check_key(key, ids)
            except Mismatch:
                raise Mismatch(
                    f"Field name {quote(key)} of the record{WHERE} must be {self.keys!r}"
                ) from None
            try:
                out[checked_key] = check_value(item, ids)  # type: ignore[index]
            except Mismatch as e:
                raise e.at(f".{key}") from None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "keys": self.keys.to_json(),
            "values": {"fieldType": self.values.to_json(), "optional": False},
        }

    def _source(self) -> str:
        return f"v.record({self.keys!r}, {self.values!r})"

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
        if len(shaped) == 1:
            raise shaped[0][1]
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}

    def _source(self) -> str:
        return f"v.union({', '.join(repr(m) for m in self.members)})"

    def _params(self) -> tuple[Any, ...]:
        return self.members


def _same_shape(validator: Validator, value: object) -> bool:
    kind = validator.kind
    if isinstance(value, dict):
        return kind == "object" or kind == "record"
    if isinstance(value, list | tuple):
        return kind == "array"
    return False
