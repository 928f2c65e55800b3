"""Convex values for Python: types, Convex JSON, index-key ordering, IDs and validators.

>>> from pyconvex.values import Int64, to_value, dumps_value
>>> dumps_value(to_value({"n": Int64(1), "x": 2}))
'{"n":{"$integer":"AQAAAAAAAAA="},"x":2.0}'
"""

from pyconvex.values.annotations import (
    Id,
    args_validator_from_signature,
    returns_validator_from_signature,
    validator_from_annotation,
)
from pyconvex.values.encoding import (
    decode_value,
    dumps_value,
    dumps_values,
    encode_clean,
    encode_value,
    loads_value,
)
from pyconvex.values.ids import decode_id, encode_id, id_table_number, new_id
from pyconvex.values.ordering import (
    compare_values,
    encode_float_part,
    encode_key,
    encode_key_part,
    key_successor,
)
from pyconvex.values.validators import (
    AnyValidator,
    ArrayValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    IdResolver,
    IdValidator,
    Int64Validator,
    IntValidator,
    LiteralValidator,
    NullValidator,
    ObjectValidator,
    RecordValidator,
    StringValidator,
    UnionValidator,
    V,
    Validator,
    v,
)
from pyconvex.values.value import (
    UNSET,
    Int64,
    Unset,
    Value,
    check_document,
    convex_size,
    to_value,
    value_type_name,
)

__all__ = [
    "UNSET",
    "AnyValidator",
    "ArrayValidator",
    "BooleanValidator",
    "BytesValidator",
    "Float64Validator",
    "Id",
    "IdResolver",
    "IdValidator",
    "Int64",
    "Int64Validator",
    "IntValidator",
    "LiteralValidator",
    "NullValidator",
    "ObjectValidator",
    "RecordValidator",
    "StringValidator",
    "UnionValidator",
    "Unset",
    "V",
    "Validator",
    "Value",
    "args_validator_from_signature",
    "check_document",
    "compare_values",
    "convex_size",
    "decode_id",
    "decode_value",
    "dumps_value",
    "dumps_values",
    "encode_clean",
    "encode_float_part",
    "encode_id",
    "encode_key",
    "encode_key_part",
    "encode_value",
    "id_table_number",
    "key_successor",
    "loads_value",
    "new_id",
    "returns_validator_from_signature",
    "to_value",
    "v",
    "validator_from_annotation",
    "value_type_name",
]
