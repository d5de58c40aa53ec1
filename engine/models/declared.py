"""What a model file declares, checked before any of its tensor data is read.

A model file comes from strangers. A 3 MB zip-compressed ``.pth`` can declare 3 GB of float32; a
safetensors header can declare 800,000 tensors; a pickle can name any function. So before a byte
of tensor data is read, the file's declarations are read on their own and bounded:

- a ``.pth`` zip archive: the uncompressed sizes its directory gives for the tensor records, and
  the storages its pickle declares, read by an unpickler that builds stand-ins and calls nothing;
- a legacy (non-zip) ``.pth`` pickle: the storages its pickle declares, against the file's size;
- a safetensors header: its size, its tensor count, every shape and offset, its metadata
  (:mod:`engine.models.metadata`, which uses the bounds and helpers here).

What no supported network could be is refused with one line; what passes is then read by the
usual loaders (``torch.load(weights_only=True)``, ``safetensors``). The bounds are generous: the
largest network Archivist runs (DRUNet 64…512, 4 blocks) has 32.6 M values in about 70 tensors,
and a training checkpoint adds two optimiser copies of them.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from engine.errors import ArchivistError, os_error_line

MAX_TENSORS = 10_000
MAX_VALUES = 1 << 28  # 268 M values, 1 GiB of float32
MAX_DATA_BYTES = 1 << 30
MAX_PICKLE_BYTES = 16 << 20  # the pickle of a .pth
LARGEST = "32.6 M values (DRUNet)"

# Bytes per element of the storage classes a torch pickle names; an unknown one counts as 8.
_STORAGE_BYTES = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
                  "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                  "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "UntypedStorage": 1}
ALLOWED = ".pth, .pt, .ckpt, .bin (PyTorch) and .safetensors"


def stat_file(path: Path) -> os.stat_result:
    """``os.stat`` with every failure as one line naming the file (loops, over-long names, permissions)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ArchivistError(os_error_line(exc, path, "a model file")) from None
    return st


def clip(text: str, limit: int = 160) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "\u2026"


def too_big(path: Path, what: str) -> ArchivistError:
    """The one refusal for a file that declares more than any network Archivist runs (``what`` it declares)."""
    return ArchivistError(f"{path}: declares {what}; the largest network Archivist runs has {LARGEST}, and "
                          f"a model file may declare at most {MAX_TENSORS:,} tensors and {MAX_VALUES:,} values "
                          "(1 GiB): not a model Archivist can use, refused before reading its data")


# -- PyTorch files -------------------------------------------------------------------------------

def sniff_torch(path: Path, head: bytes, size: int) -> str:
    """``zip`` or ``pickle`` for a file PyTorch wrote; one clear refusal for everything else."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) > 262 and head[257:262] == b"ustar":
        raise ArchivistError(
            f"{path}: a PyTorch file in the legacy tar format (PyTorch 0.3 and earlier), which cannot be read "
            "without running the code it may hold; Archivist loads weights only: re-save it as .pth or "
            ".safetensors with a current PyTorch, if you trust its source")
    if _looks_onnx(head):
        raise ArchivistError(f"{path}: an ONNX model, not a PyTorch file; Archivist imports {ALLOWED} "
                             "(ONNX is an export format only)")
    if len(head) >= 10 and head[8:10] == b'{"' and struct.unpack("<Q", head[:8])[0] < size:
        raise ArchivistError(f"{path}: a safetensors file with a {path.suffix or 'missing'} suffix: "
                             "rename it to .safetensors")
    if head[:1] == b"\x80":
        return "pickle"
    raise ArchivistError(f"{path}: not a readable PyTorch model file: its bytes are neither PyTorch's zip archive "
                         f"nor a pickle (allowed: {ALLOWED})")


def _looks_onnx(head: bytes) -> bool:
    # ModelProto begins with ir_version (field 1, a small varint), then a string or message field.
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x20 and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32,
                                                                                  0x3A, 0x42)


class _Opaque:
    """What the scanning unpickler builds for anything it is asked for: calls nothing, holds nothing."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _StorageType(_Opaque):
    def __init__(self, name: str):
        self.itemsize = _STORAGE_BYTES.get(name, 8)


class _TooMany(Exception):
    pass


class _DeclarationScanner(pickle.Unpickler):
    """Reads a torch pickle for what it declares (storages and their sizes, tensor count) only.

    ``find_class`` never returns a real function: tensors become stand-ins, every other name an
    :class:`_Opaque`, so nothing the pickle names is ever called. Safe on any bytes.
    """

    def __init__(self, file: io.BufferedIOBase):
        super().__init__(file)
        self.storages: dict[str, int] = {}  # key -> declared bytes
        self.tensors = 0

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name.startswith("_rebuild_tensor"):
            return self._tensor
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        return _Opaque

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel[, view metadata]): numel in elements.
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            stype, key, numel = pid[1], str(pid[2]), pid[4]
            if not isinstance(numel, int) or numel < 0:
                raise pickle.UnpicklingError(f"storage {key} declares {numel!r} elements")
            itemsize = stype.itemsize if isinstance(stype, _StorageType) else 8
            self.storages[key] = max(self.storages.get(key, 0), numel * itemsize)
        return _Opaque()

    def _tensor(self, *args: Any) -> _Opaque:
        self.tensors += 1
        if self.tensors > MAX_TENSORS:
            raise _TooMany
        return _Opaque()


def _scan(path: Path, data: io.BufferedIOBase, count: int = 1) -> _DeclarationScanner:
    scanner = _DeclarationScanner(data)
    try:
        for _ in range(count):
            scanner.load()
    except _TooMany:
        raise too_big(path, f"more than {MAX_TENSORS:,} tensors") from None
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes fail in arbitrary ways
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: "
                             f"{clip(str(exc) or type(exc).__name__)})") from None
    return scanner


def _check_declared(path: Path, scanner: _DeclarationScanner) -> None:
    total = sum(scanner.storages.values())
    if total > MAX_DATA_BYTES:
        raise too_big(path, f"{total:,} bytes of tensor data in {scanner.tensors:,} tensor"
                      f"{'s' if scanner.tensors != 1 else ''} (about {total // 4:,} float32 values)")


def check_torch_zip(path: Path) -> None:
    """Bound a PyTorch zip archive by its directory and its pickle's declarations, reading no tensor data."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_TENSORS + 64:
                raise too_big(path, f"{len(infos):,} records")
            pickles = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if not pickles:
                raise ArchivistError(f"{path}: a zip archive, but not one PyTorch wrote (no data.pkl); "
                                     f"Archivist imports {ALLOWED}")
            pkl = pickles[0]
            if pkl.file_size > MAX_PICKLE_BYTES:
                raise too_big(path, f"a {pkl.file_size:,}-byte pickle")
            prefix = pkl.filename[: -len("data.pkl")]
            records = {i.filename[len(prefix) + len("data/"):]: i.file_size for i in infos
                       if i.filename.startswith(prefix + "data/")}
            stored = sum(records.values())
            if stored > MAX_DATA_BYTES:
                raise too_big(path, f"{stored:,} bytes of tensor data ({len(records):,} record{'s' if len(records) != 1 else ''}, "
                              f"{path.stat().st_size:,} bytes compressed)")
            scanner = _scan(path, io.BytesIO(zf.read(pkl)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: "
                             f"{clip(str(exc) or type(exc).__name__)})") from None
    _check_declared(path, scanner)
    missing = sorted(k for k in scanner.storages if k not in records)
    if missing:
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: "
                             f"tensor data record {missing[0]} is missing)")


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def check_legacy_pickle(path: Path, size: int) -> None:
    """Bound a legacy (non-zip) PyTorch file: the storages its pickle declares must fit in the file.

    Its layout is four pickles (magic number, protocol, system info, the object) and then the
    storages' bytes; PyTorch allocates each storage at its declared size before reading it. A
    pickle that is not a PyTorch file's is left to ``torch.load``, which refuses it.
    """
    try:
        with open(path, "rb") as f:
            scanner = _DeclarationScanner(f)
            try:
                first = scanner.load()
            except Exception:  # noqa: BLE001 - not a torch file: torch.load gives the reason
                return
            if first != LEGACY_MAGIC:
                return
            try:
                for _ in range(3):
                    scanner.load()
            except _TooMany:
                raise too_big(path, f"more than {MAX_TENSORS:,} tensors") from None
            except Exception as exc:  # noqa: BLE001
                raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: "
                                     f"{clip(str(exc) or type(exc).__name__)})") from None
    except OSError as exc:
        raise ArchivistError(os_error_line(exc, path, "a model file")) from None
    _check_declared(path, scanner)
    total = sum(scanner.storages.values())
    if total > size:
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: it declares "
                             f"{total:,} bytes of tensor data but holds {size:,} bytes)")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str, limit: int) -> int:
    """How deep ``[`` and ``{`` nest in JSON text (inside strings they do not count); stops past ``limit``."""
    depth = deepest = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest
