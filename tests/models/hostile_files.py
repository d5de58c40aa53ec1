"""Model files built to hurt a reader: what a stranger's download may be. Shared by the tests.

Each maker writes real bytes in the format it imitates (a PyTorch zip archive, a safetensors
header), so the reader under test meets them exactly as it would meet a file from the web.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import tarfile
import zlib
from collections import OrderedDict
from pathlib import Path


class _Storage:
    """Stands for a storage in the pickle; pickled as a persistent id, as torch.save does."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, {})``."""

    def __init__(self, storage: _Storage, shape: tuple[int, ...]):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        import torch

        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, self.shape, tuple(stride), False, OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        import torch

        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def _pickle_state(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _zip(path: Path, entries: list[tuple[str, bytes, int, int, int]]) -> None:
    """Write a zip by hand: ``(name, payload, method, crc, uncompressed_size)`` per entry.

    By hand because zipfile cannot take an already-deflated payload, and deflating gigabytes of
    zeros takes half a minute where repeating one deflated block takes none.
    """
    out = bytearray()
    central = bytearray()
    for name, payload, method, crc, size in entries:
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload), size, len(raw), 0)
        out += raw + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(payload), size,
                               len(raw), 0, 0, 0, 0, 0, offset)
        central += raw
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), start, 0)
    Path(path).write_bytes(bytes(out))


def _deflated_zeros(nbytes: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``nbytes`` zero bytes and its CRC-32, built from one repeated block."""
    chunk = 1 << 24
    assert nbytes % chunk == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor forgets its history: every further block is the same bytes.
    assert again == comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    n = nbytes // chunk
    stream = first + again * (n - 1) + comp.flush()
    crc, zeros = 0, bytes(chunk)
    for _ in range(n):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


def zip_bomb_pth(path: Path, floats: int = 805_306_368) -> Path:
    """A zip-compressed ``.pth`` (about 3 MB) whose pickle declares ``floats`` float32 values (3.2 GB)."""
    nbytes = floats * 4
    payload, crc = _deflated_zeros(nbytes)
    storage = _Storage("0", floats)
    pkl = _pickle_state({"params": {"layer.weight": _Tensor(storage, (floats,))}})
    small = [("bomb/data.pkl", pkl), ("bomb/byteorder", b"little"), ("bomb/version", b"3\n"),
             ("bomb/.data/serialization_id", b"0" * 40)]
    entries = [(n, d, 0, zlib.crc32(d), len(d)) for n, d in small]
    entries.insert(1, ("bomb/data/0", payload, 8, crc, nbytes))
    _zip(path, entries)
    return path


def declared_only_pth(path: Path, floats: int) -> Path:
    """A ``.pth`` whose pickle declares ``floats`` values while its data record holds 16 bytes."""
    pkl = _pickle_state({"params": {"body.0.weight": _Tensor(_Storage("0", floats), (floats,))}})
    small = [("m/data.pkl", pkl), ("m/data/0", bytes(16)), ("m/byteorder", b"little"), ("m/version", b"3\n")]
    _zip(path, [(n, d, 0, zlib.crc32(d), len(d)) for n, d in small])
    return path


def safetensors_with_header(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    """A safetensors file with exactly this JSON header (a dict, or raw bytes) and data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def many_empty_tensors_safetensors(path: Path, count: int = 800_000) -> Path:
    """A safetensors file declaring ``count`` empty tensors (a 50 MB header)."""
    header = {f"t.{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(count)}
    return safetensors_with_header(path, header)


def deep_metadata_safetensors(path: Path, depth: int = 50_000) -> Path:
    """A real tiny Compact whose safetensors metadata holds a JSON list nested ``depth`` deep."""
    import torch
    from safetensors.torch import save_file

    from engine.models import compact

    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in compact.build(compact.spec_for(8, 2, 1)).state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata={"arch": "compact", "profiles": "[" * depth + "]" * depth})
    return path


def legacy_tar_pth(path: Path) -> Path:
    """A ``.pth`` in PyTorch's legacy tar layout (members ``storages``, ``tensors``, ``pickle``)."""
    with tarfile.open(path, "w") as tar:
        for name in ("storages", "tensors", "pickle"):
            data = pickle.dumps(0, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def onnx_renamed_pth(path: Path) -> Path:
    """A real ONNX export of a tiny Compact, given a ``.pth`` name."""
    import warnings

    import torch

    from engine.models import compact

    net = compact.build(compact.spec_for(8, 2, 1)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 16, 16),), str(path), dynamo=False)
    return path


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width × height`` RGB pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1024)))
            + chunk(b"IEND", b""))


class CodeRunner:
    """Pickles as a call to a function: what weights-only loading must refuse (harmless if it ran)."""

    def __reduce__(self):
        import os

        return (os.getpid, ())


def discriminator_state() -> dict:
    import torch

    from engine.models.discriminator import UNetDiscriminatorSN

    torch.manual_seed(0)
    return UNetDiscriminatorSN(num_feat=8).state_dict()


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        import torch

        if isinstance(obj, _Storage):  # the legacy layout adds a view slot to the storage's id
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, None)
        return None


def legacy_declaring_pth(path: Path, floats: int) -> Path:
    """A legacy (non-zip) ``.pth``, a few hundred bytes, whose pickle declares ``floats`` float32 values."""
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    _LegacyPickler(buf, protocol=2).dump({"body.0.weight": _Tensor(_Storage("0", floats), (floats,))})
    pickle.dump(["0"], buf, protocol=2)
    Path(path).write_bytes(buf.getvalue())
    return path
