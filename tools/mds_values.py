"""JSON form of MDS column values, shared by gen_mds_fixtures.py and check_mds_with_streaming.py.

The Rust tests (crates/audiotok-mds/tests/) read and write the same form, so a value means the
same thing on both sides, bit for bit:

  int8..uint64, int, str_int    JSON integer (any size)
  float16/32/64, str_float      16 hex digits: the IEEE-754 float64 bits of the value
                                (float16/float32 values widened exactly), so NaN and -0.0 survive
  str_decimal                   str(Decimal)
  str                           JSON string
  bytes                         hex string
  json                          the JSON value itself (key order kept)
  ndarray[...]                  {"dtype": numpy name, "shape": [...], "data": hex of the raw
                                little-endian C-order bytes}
"""

import struct
from decimal import Decimal

import numpy as np

_INTS = {'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'int', 'str_int'}
_FLOATS = {'float16', 'float32', 'float64', 'str_float'}


def _kind(encoding: str) -> str:
    return encoding.split(':', 1)[0]


def float_bits(x: float) -> str:
    return struct.pack('>d', float(x)).hex()


def bits_float(h: str) -> float:
    return struct.unpack('>d', bytes.fromhex(h))[0]


def to_repr(encoding: str, value):
    """A decoded streaming value -> JSON form."""
    kind = _kind(encoding)
    if kind in _INTS:
        return int(value)
    if kind in _FLOATS:
        return float_bits(value)
    if kind == 'str_decimal':
        return str(value)
    if kind == 'str':
        return value
    if kind == 'bytes':
        return bytes(value).hex()
    if kind == 'json':
        return value
    if kind == 'ndarray':
        arr = np.ascontiguousarray(value)
        if arr.dtype.byteorder == '>':
            arr = arr.astype(arr.dtype.newbyteorder('<'))
        return {'dtype': arr.dtype.name, 'shape': list(arr.shape), 'data': arr.tobytes().hex()}
    raise ValueError(f'no JSON form for encoding {encoding}')


def from_repr(encoding: str, form):
    """JSON form -> the Python value to give MDSWriter."""
    kind = _kind(encoding)
    if kind in _INTS:
        return int(form)
    if kind in _FLOATS:
        return bits_float(form)
    if kind == 'str_decimal':
        return Decimal(form)
    if kind == 'str':
        return form
    if kind == 'bytes':
        return bytes.fromhex(form)
    if kind == 'json':
        return form
    if kind == 'ndarray':
        data = bytes.fromhex(form['data'])
        return np.frombuffer(data, np.dtype(form['dtype']).newbyteorder('<')).reshape(form['shape']).copy()
    raise ValueError(f'no JSON form for encoding {encoding}')
