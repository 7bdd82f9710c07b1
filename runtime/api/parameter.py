"""The PyCOMPSs parameter vocabulary (pycompss.api.parameter), as ParamSpec constants."""
from __future__ import annotations

from ..core.params import (CACHE_KEY, DEPTH_KEY, DIRECTION_KEY, KEEP_RENAME_KEY, PREFIX_KEY,
                           STREAM_KEY, TYPE_KEY, WEIGHT_KEY, Direction as _D, Kind as _K,
                           ParamSpec, Stream as _S)

# dict-form keys: @task(x={Type: COLLECTION_IN, Direction: INOUT, Depth: 2})
Type = TYPE_KEY
Direction = DIRECTION_KEY
StdIOStream = STREAM_KEY
Prefix = PREFIX_KEY
Depth = DEPTH_KEY
Weight = WEIGHT_KEY
Keep_rename = KEEP_RENAME_KEY
Cache = CACHE_KEY

STDIN, STDOUT, STDERR, UNSPECIFIED = _S.STDIN, _S.STDOUT, _S.STDERR, _S.UNSPECIFIED


def _spec(direction: _D, kind: _K = _K.OBJECT, **extra) -> ParamSpec:
    return ParamSpec(direction=direction, kind=kind, **extra)


IN = _spec(_D.IN)
OUT = _spec(_D.OUT)
INOUT = _spec(_D.INOUT)
IN_DELETE = _spec(_D.IN_DELETE)
CONCURRENT = _spec(_D.CONCURRENT)
COMMUTATIVE = _spec(_D.COMMUTATIVE)

FILE_IN = _spec(_D.IN, _K.FILE)
FILE = FILE_IN
FILE_OUT = _spec(_D.OUT, _K.FILE)
FILE_INOUT = _spec(_D.INOUT, _K.FILE)
FILE_CONCURRENT = _spec(_D.CONCURRENT, _K.FILE)
FILE_COMMUTATIVE = _spec(_D.COMMUTATIVE, _K.FILE)
FILE_IN_STDIN = _spec(_D.IN, _K.FILE, stream=_S.STDIN)
FILE_IN_STDOUT = _spec(_D.IN, _K.FILE, stream=_S.STDOUT)
FILE_IN_STDERR = _spec(_D.IN, _K.FILE, stream=_S.STDERR)
FILE_STDIN, FILE_STDOUT, FILE_STDERR = FILE_IN_STDIN, FILE_IN_STDOUT, FILE_IN_STDERR
FILE_OUT_STDIN = _spec(_D.OUT, _K.FILE, stream=_S.STDIN)
FILE_OUT_STDOUT = _spec(_D.OUT, _K.FILE, stream=_S.STDOUT)
FILE_OUT_STDERR = _spec(_D.OUT, _K.FILE, stream=_S.STDERR)
FILE_INOUT_STDIN = _spec(_D.INOUT, _K.FILE, stream=_S.STDIN)
FILE_INOUT_STDOUT = _spec(_D.INOUT, _K.FILE, stream=_S.STDOUT)
FILE_INOUT_STDERR = _spec(_D.INOUT, _K.FILE, stream=_S.STDERR)

DIRECTORY_IN = _spec(_D.IN, _K.DIRECTORY)
DIRECTORY = DIRECTORY_IN
DIRECTORY_OUT = _spec(_D.OUT, _K.DIRECTORY)
DIRECTORY_INOUT = _spec(_D.INOUT, _K.DIRECTORY)

COLLECTION_IN = _spec(_D.IN, _K.COLLECTION)
COLLECTION = COLLECTION_IN
COLLECTION_OUT = _spec(_D.OUT, _K.COLLECTION)
COLLECTION_INOUT = _spec(_D.INOUT, _K.COLLECTION)
COLLECTION_IN_DELETE = _spec(_D.IN_DELETE, _K.COLLECTION)
COLLECTION_FILE_IN = _spec(_D.IN, _K.COLLECTION, element_kind=_K.FILE)
COLLECTION_FILE = COLLECTION_FILE_IN
COLLECTION_FILE_OUT = _spec(_D.OUT, _K.COLLECTION, element_kind=_K.FILE)
COLLECTION_FILE_INOUT = _spec(_D.INOUT, _K.COLLECTION, element_kind=_K.FILE)

DICTIONARY_IN = _spec(_D.IN, _K.DICTIONARY)
DICTIONARY = DICTIONARY_IN
DICTIONARY_OUT = _spec(_D.OUT, _K.DICTIONARY)
DICTIONARY_INOUT = _spec(_D.INOUT, _K.DICTIONARY)
DICTIONARY_IN_DELETE = _spec(_D.IN_DELETE, _K.DICTIONARY)

__all__ = [name for name in dir() if name.isupper() or name in (
    "Type", "Direction", "StdIOStream", "Prefix", "Depth", "Weight", "Keep_rename", "Cache")]
