"""Convex values for Python: types, Convex JSON, index-key ordering, IDs and validators.

>>> from pyconvex.values import Int64, to_value, dumps_value
>>> dumps_value(to_value({"n": Int64(1), "x": 2}))
'{"n":{"$integer":"AQAAAAAAAAA="},"x":2.0}'
"""

from pyconvex.values.encoding import (
    decode_value,
    dumps_value,
    encode_clean,
    encode_value,
    loads_value,
)
from pyconvex.values.ids import decode_id, encode_id, id_table_number, new_id
from pyconvex.values.ordering import compare_values, encode_key, encode_key_part, key_successor
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
    "Int64",
    "Unset",
    "Value",
    "check_document",
    "compare_values",
    "convex_size",
    "decode_id",
    "decode_value",
    "dumps_value",
    "encode_clean",
    "encode_id",
    "encode_key",
    "encode_key_part",
    "encode_value",
    "id_table_number",
    "key_successor",
    "loads_value",
    "new_id",
    "to_value",
    "value_type_name",
]
