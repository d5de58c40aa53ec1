"""A safetensors file's header and the metadata in it, read without torch.

A model file's safetensors header is JSON from strangers: :func:`read_safetensors_header` bounds
and checks it (its size, nesting, tensor count, every dtype, shape and offset) before anything
parses it further or reads a byte of tensor data. Its ``__metadata__`` says what the model is
(arch, sizes, role, iterations, hashes); :func:`encode_metadata` and :func:`decode_metadata` turn
that between Python values and safetensors' text-to-text map.

Torch-free on purpose: the library lists models, and the TUI shows them, from headers alone;
``files`` (which loads weights with torch) and ``library`` both use this module, and it uses
neither.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from engine.errors import ArchivistError, os_error_line
from engine.models.declared import MAX_TENSORS, MAX_VALUES, clip, json_depth, too_big

MAX_HEADER_BYTES = 8 << 20  # a safetensors JSON header
MAX_HEADER_DEPTH = 8  # {"name": {"shape": [...]}} is 3 deep

SAFETENSORS_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                      "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, bounded and checked, without reading tensor data.

    Checks its declared size against the file and :data:`MAX_HEADER_BYTES`, its nesting, its tensor
    count, and every entry's dtype, shape and offsets; ``__metadata__`` is left for the caller.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            raw8 = f.read(8)
            if len(raw8) < 8:
                raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: "
                                     f"{size} bytes, shorter than its 8-byte header length)")
            (n,) = struct.unpack("<Q", raw8)
            if 8 + n > size:
                raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: its header "
                                     f"declares {n:,} bytes, the file holds {size - 8:,} after the length)")
            if n > MAX_HEADER_BYTES:
                raise ArchivistError(f"{path}: declares a {n:,}-byte safetensors header; Archivist reads headers "
                                     f"up to {MAX_HEADER_BYTES:,} bytes: not a model Archivist can use")
            raw = f.read(n)
    except OSError as exc:
        raise ArchivistError(os_error_line(exc, path, "a model file")) from None
    if not raw.lstrip()[:1] == b"{":
        raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: the header is not JSON)")
    if raw.count(b'"data_offsets"') > MAX_TENSORS:
        raise too_big(path, f"{raw.count(b'data_offsets'):,} tensors")
    if json_depth(raw.decode("utf-8", "replace"), MAX_HEADER_DEPTH) > MAX_HEADER_DEPTH:
        raise ArchivistError(f"{path}: not a valid safetensors file (its header is nested more than "
                             f"{MAX_HEADER_DEPTH} deep)")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: header: "
                             f"{clip(str(exc))})") from None
    if not isinstance(header, dict):
        raise ArchivistError(f"{path}: not a valid safetensors file (the header is not a JSON object)")
    _check_entries(path, header, size - 8 - n)
    return header


def _check_entries(path: Path, header: dict[str, Any], data_size: int) -> None:
    values = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in SAFETENSORS_DTYPES
              and isinstance(info.get("shape"), list) and isinstance(info.get("data_offsets"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in info["shape"])
              and len(info["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in info["data_offsets"]))
        if not ok:
            raise ArchivistError(f"{path}: not a valid safetensors file (tensor {clip(name, 60)!r} has no valid "
                                 "dtype, shape and data_offsets)")
        count = 1
        for d in info["shape"]:
            count *= d
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= data_size or end - start != count * SAFETENSORS_DTYPES[info["dtype"]]:
            raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: tensor "
                                 f"{clip(name, 60)!r} lies outside the file's {data_size:,} data bytes)")
        values += count
        if values > MAX_VALUES:
            raise too_big(path, f"more than {MAX_VALUES:,} values")


# -- metadata ------------------------------------------------------------------------------------

def encode_metadata(meta: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata is str→str: strings stay, everything else is JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items() if v is not None}


# Keys whose values are always text: a model named "123" or "null" stays a string.
TEXT_KEYS = frozenset({"format", "arch", "act_type", "role", "name", "source", "run", "sha256", "description"})


# Metadata is data from strangers: its size and its JSON nesting are bounded before it is parsed
# (Archivist's own is a few kilobytes and three levels deep).
MAX_METADATA_BYTES = 1 << 20
MAX_METADATA_DEPTH = 16


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`encode_metadata` (JSON where it parses, else the string).

    Raises :class:`ArchivistError` (without a file name: callers add it) for metadata that is not
    text keys and values, is larger than :data:`MAX_METADATA_BYTES` or nests JSON deeper than
    :data:`MAX_METADATA_DEPTH`.
    """
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ArchivistError("metadata must map text keys to text values")
    total = sum(len(k) + len(v) for k, v in raw.items())
    if total > MAX_METADATA_BYTES:
        raise ArchivistError(f"metadata of {total:,} characters; Archivist reads at most {MAX_METADATA_BYTES:,}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in TEXT_KEYS:
            out[k] = v
            continue
        if json_depth(v, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
            raise ArchivistError(f"metadata {clip(k, 40)!r} nests deeper than {MAX_METADATA_DEPTH} levels; "
                                 f"Archivist reads at most {MAX_METADATA_DEPTH}")
        try:
            out[k] = json.loads(v)
        except (ValueError, TypeError, RecursionError):
            out[k] = v
    return out
