"""The model library: ``ARCHIVIST_HOME/models/<name>.safetensors`` plus the built-ins shipped in the package.

Every model is stored as ``.safetensors`` whose metadata says what it is (arch, sizes, role,
iterations, source, training profiles and hashes, sha256 of the weights), so listing the library
reads only file headers. Built-in models (``engine/models/builtin/``) appear in every library,
read-only.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.models.names import NAME_RE, ROLES, check_name, check_role  # noqa: F401 - ROLES: the faces read it here
from engine.models.spec import Hints
from engine.paths import state_subdir

EXPORT_FORMATS = ("pth", "safetensors", "onnx")
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


@dataclass
class ModelEntry:
    """One model of the library, as listed (read from the file's header only)."""

    name: str
    path: Path
    arch: str
    num_feat: int | None
    num_conv: int | None
    scale: int
    params: int
    role: str
    sha256: str
    iterations: int | None = None
    source: str | None = None
    builtin: bool = False
    size_bytes: int = 0
    in_channels: int = 3
    out_channels: int = 3
    hyper: dict[str, Any] = field(default_factory=dict)
    profiles: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d.pop("metadata")
        return d

    @property
    def size_label(self) -> str:
        if self.arch == "compact":
            return f"{self.num_feat}/{self.num_conv}×{self.scale}"
        if self.arch == "drunet":
            nc = self.hyper.get("nc") or [self.num_feat]
            return f"{nc[0]}…×1"
        return "-"


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor shapes and ``__metadata__``) without loading weights.

    Bounded and checked (see :mod:`engine.models.metadata`); errors name the file.
    """
    from engine.models.metadata import read_safetensors_header

    try:
        return read_safetensors_header(path)
    except ArchivistError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise ArchivistError(f"{path}: unreadable model file in the library ({reason})") from None


def entry_from_file(path: Path, builtin: bool = False) -> ModelEntry:
    """Build a listing entry from a library file's header."""
    from engine.models.metadata import decode_metadata

    header = read_header(path)
    try:
        meta = decode_metadata(header.get("__metadata__", {}))
    except ArchivistError as exc:
        raise ArchivistError(f"{path}: unreadable model file in the library ({exc})") from None
    params = meta.get("params")
    if params is None:
        params = 0
        for key, info in header.items():
            if key != "__metadata__":
                n = 1
                for d in info.get("shape", []):
                    n *= d
                params += n
    return ModelEntry(
        name=path.stem,
        path=path,
        arch=meta.get("arch", "unknown"),
        num_feat=meta.get("num_feat"),
        num_conv=meta.get("num_conv"),
        scale=int(meta.get("scale", 1)),
        params=int(params),
        role=meta.get("role", "custom"),
        sha256=meta.get("sha256", ""),
        iterations=meta.get("iterations"),
        source=meta.get("source"),
        builtin=builtin,
        size_bytes=path.stat().st_size,
        in_channels=int(meta.get("in_channels", 3)),
        out_channels=int(meta.get("out_channels", 3)),
        hyper=meta.get("hyper") or {},
        profiles=meta.get("profiles"),
        metadata=meta,
    )


def missing_model_message(name: str, known: list[str]) -> str:
    """Why ``name`` cannot be used and how to get it: fetch it when the catalog has it, else the lists."""
    from engine.models.catalog import load_catalog

    try:
        catalog = [c.name for c in load_catalog()]
    except ArchivistError:  # an unreadable catalog must not hide the library's own answer
        catalog = []
    if name in catalog:
        return (f"model {name!r} is not in the library yet; it is in the catalog: "
                f"get it with 'archivist models fetch {name}' (needs network)")
    have = ", ".join(known) or "none yet (archivist models import PATH)"
    offer = f"; the catalog offers {', '.join(catalog)} (archivist models fetch NAME)" if catalog else ""
    return f"no model named {name!r} in the library; models: {have}{offer}"


class Library:
    """The models in ``ARCHIVIST_HOME/models`` and the package's built-ins."""

    def __init__(self, root: Path | None = None, builtin_dir: Path | None = BUILTIN_DIR):
        self.root = root if root is not None else state_subdir("models")
        self.builtin_dir = builtin_dir

    # -- reading -----------------------------------------------------------------------------
    def _builtin_files(self) -> dict[str, Path]:
        if self.builtin_dir is None or not self.builtin_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.builtin_dir.glob("*.safetensors"))}

    def _user_files(self) -> dict[str, Path]:
        if not self.root.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.root.glob("*.safetensors")) if not p.name.startswith(".")}

    def list(self) -> list[ModelEntry]:
        """Every model, built-ins first, then the user's, by name."""
        entries = [entry_from_file(p, builtin=True) for p in self._builtin_files().values()]
        builtin_names = {e.name for e in entries}
        entries += [entry_from_file(p) for n, p in self._user_files().items() if n not in builtin_names]
        return entries

    def names(self) -> list[str]:
        return [e.name for e in self.list()]

    def find(self, name: str) -> ModelEntry | None:
        builtin = self._builtin_files().get(name)
        if builtin is not None:
            return entry_from_file(builtin, builtin=True)
        user = self._user_files().get(name)
        return entry_from_file(user) if user is not None else None

    def get(self, name: str) -> ModelEntry:
        """The entry of a model by name, or a clear error listing what exists."""
        entry = self.find(name)
        if entry is None:
            raise ArchivistError(missing_model_message(name, self.names()))
        return entry

    def resolve(self, name_or_path: str) -> Path:
        """A library name or a path to a model file → the file to load."""
        entry = self.find(name_or_path) if NAME_RE.match(name_or_path) else None
        if entry is not None:
            return entry.path
        path = Path(name_or_path).expanduser()
        # lexists: a dangling link or a link loop is a file the user named, and reading it says
        # what is wrong with it; only a name that matches nothing on disk is looked up as a model.
        if os.path.lexists(path) or any(name_or_path.lower().endswith(s) for s in (".pth", ".pt", ".ckpt",
                                                                                    ".safetensors")):
            if not os.path.lexists(path):
                raise ArchivistError(f"{path}: no such model file")
            return path
        return self.get(name_or_path).path  # raises with the list of names

    # -- writing -----------------------------------------------------------------------------
    def _target(self, name: str, force: bool, replaceable: bool = True) -> Path:
        """The file a new model ``name`` takes. The refusals name the keys ``name`` and ``force``, which
        the command line shows as its flags; ``replaceable`` False (a rename) offers no ``force``."""
        check_name(name)
        if name in self._builtin_files():
            raise Conflict(("name",), f"{name!r} is a built-in model and cannot be replaced; choose another {{0}}")
        target = self.root / f"{name}.safetensors"
        if target.exists() and not force:
            if not replaceable:
                raise ArchivistError(f"a model named {name!r} exists already; choose another name, or remove it first")
            raise Conflict(("force", "name"), f"a model named {name!r} exists already; use {{0}} to replace it or {{1}}")
        return target

    def import_file(self, path: str | os.PathLike, name: str | None = None, role: str | None = None,
                    force: bool = False, source: str | None = None, hints: Hints | None = None,
                    **extra: Any) -> ModelEntry:
        """Convert a model file to ``.safetensors`` in the library and return its entry.

        ``hints`` (``--act``, ``--scale``, ``--out-channels``) say what the weights cannot; they
        must agree with the file's metadata where it has some.
        """
        from engine.models.files import build_module, detect_spec, read_state_dict, save_safetensors

        path = Path(path)
        state_dict, meta = read_state_dict(path)
        spec = detect_spec(state_dict, meta, path, hints)
        if spec.arch == "unet_discriminator":
            raise ArchivistError(f"{path}: is a discriminator (training only), not a restoration model")
        build_module(spec, state_dict, path)  # refuse weights that do not fit before they enter the library
        if name is None:
            name = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).strip("-._").lower() or "model"
        target = self._target(name, force)
        if role is None:
            role = meta.get("role") or ("denoise" if spec.arch == "drunet" else "custom")
        check_role(role)
        # What the file says of its training and its parents (the model it was fine-tuned from, the two
        # it was blended from) moves with it: lineage lost on import made related models look unrelated.
        keep = {k: meta[k] for k in ("iterations", "profiles", "profile_hashes", "run", "trained_on", "pretrained",
                                     "interpolated") if k in meta}
        keep.update(extra)
        save_safetensors(target, state_dict, spec, role=role, source=source or meta.get("source") or str(path.resolve()),
                         name=name, **keep)
        return entry_from_file(target)

    def _user_entry(self, name: str, action: str) -> ModelEntry:
        entry = self.get(name)
        if entry.builtin:
            raise ArchivistError(f"{name!r} is a built-in model and cannot be {action}")
        return entry

    def rename(self, old: str, new: str) -> ModelEntry:
        """Rename a user model (the file and its metadata)."""
        entry = self._user_entry(old, "renamed")
        target = self._target(new, force=False, replaceable=False)
        self._rewrite(entry, target, name=new)
        entry.path.unlink()
        return entry_from_file(target)

    def set_role(self, name: str, role: str) -> ModelEntry:
        """Change a user model's role."""
        entry = self._user_entry(name, "changed")
        self._rewrite(entry, entry.path, role=check_role(role))
        return entry_from_file(entry.path)

    def _rewrite(self, entry: ModelEntry, target: Path, **changes: Any) -> None:
        from safetensors.torch import save_file

        from engine.atomic import atomic_write
        from engine.models.files import read_state_dict
        from engine.models.metadata import encode_metadata

        tensors, meta = read_state_dict(entry.path)
        meta.update(changes)
        atomic_write(target, lambda tmp: save_file(tensors, str(tmp), metadata=encode_metadata(meta)))

    def interpolate(self, a: str, b: str, weight: float, name: str, role: str | None = None,
                    force: bool = False) -> ModelEntry:
        """A new model whose every weight is ``(1 - weight) * a + weight * b`` (network interpolation).

        Both models must be the same network (architecture, sizes, activation, every tensor's
        shape); the blend is meaningful when one was fine-tuned from the other (or both from one
        parent), as the built-in starter v2 was from v1. ``weight`` 0 is ``a``, 1 is ``b``. The new
        file records both parents (name, sha256, weight) and both training mixes; the role is
        ``b``'s unless given. Everything is checked before the file is written.
        """
        import math

        import torch

        from engine.document import InvalidValue
        from engine.models.files import load_model, save_safetensors

        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                math.isfinite(weight) and 0.0 <= weight <= 1.0):
            raise InvalidValue("weight", weight, "a number from 0 (all of the first model) to 1 (all of the second)")
        first, second = self.get(a), self.get(b)
        target = self._target(name, force)
        role = check_role(role or second.role)
        la, lb = load_model(first.path), load_model(second.path)
        if la.spec != lb.spec:
            da, db = la.spec.describe(), lb.spec.describe()
            if da == db:  # the same sizes: say what differs (an activation, the channels)
                differ = sorted(k for k in set(la.spec.hyper) | set(lb.spec.hyper)
                                if la.spec.hyper.get(k) != lb.spec.hyper.get(k))
                da = ", ".join(f"{k} {la.spec.hyper.get(k)}" for k in differ) or da
                db = ", ".join(f"{k} {lb.spec.hyper.get(k)}" for k in differ) or db
            raise ArchivistError(f"cannot interpolate {a!r} ({da}) and {b!r} ({db}): "
                                 "only two models of the same network can be blended")
        sa, sb = la.module.state_dict(), lb.module.state_dict()
        if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
            raise ArchivistError(f"cannot interpolate {a!r} and {b!r}: their tensors differ in name or shape")
        w = float(weight) + 0.0  # (-0.0 is 0)
        blended = {k: sa[k].to(torch.float64).mul(1.0 - w).add(sb[k].to(torch.float64), alpha=w).to(sa[k].dtype)
                   if sa[k].is_floating_point() else sa[k].clone() for k in sa}
        mixes = []
        for entry in (first, second):
            for mix in entry.profiles if isinstance(entry.profiles, list) else [entry.profiles]:
                if mix and mix not in mixes:
                    mixes.append(mix)
        parents = {"a": {"name": first.name, "sha256": first.sha256, "weight": round(1.0 - w, 6)},
                   "b": {"name": second.name, "sha256": second.sha256, "weight": round(w, 6)}}
        save_safetensors(target, blended, la.spec, role=role, name=name,
                         source=f"interpolation: {first.name} x {1.0 - w:g} + {second.name} x {w:g}",
                         interpolated=parents, profiles=(mixes[0] if len(mixes) == 1 else mixes) or None)
        return entry_from_file(target)

    @staticmethod
    def parents(e: ModelEntry) -> set[str]:
        """The sha256 of the models a file records as its parents: the one it was fine-tuned from
        (``pretrained``) and the two it was blended from (``interpolated``)."""
        shas: set = set()
        p = e.metadata.get("pretrained")
        if isinstance(p, dict):
            shas.add(p.get("sha256"))
        blended = e.metadata.get("interpolated")
        if isinstance(blended, dict):
            shas.update(v.get("sha256") for v in blended.values() if isinstance(v, dict))
        return {s for s in shas if isinstance(s, str) and s}

    def related(self, a: ModelEntry, b: ModelEntry) -> bool:
        """Whether two models share a line: one is the other or descends from it (fine-tuned or
        blended, over any number of generations), or both descend from one model. Each file records
        its own parents only; the generations before are followed through the models in this library."""
        by_sha: dict[str, ModelEntry] = {}
        for entry in self.list():
            by_sha.setdefault(entry.sha256, entry)

        def line(e: ModelEntry) -> set[str]:
            seen, todo = {e.sha256}, list(self.parents(e))
            while todo:
                sha = todo.pop()
                if sha in seen:
                    continue
                seen.add(sha)
                if sha in by_sha:
                    todo.extend(self.parents(by_sha[sha]))
            return {s for s in seen if s}

        return bool(line(a) & line(b))

    def remove(self, name: str) -> None:
        """Delete a user model."""
        self._user_entry(name, "removed").path.unlink()

    def export(self, name: str, fmt: str, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write a model as ``pth`` (Real-ESRGAN layout), ``safetensors`` or ``onnx``.

        Each format carries the model's metadata (activation, scale, channels) where it can, and
        every file is read back and run beside the library's network on a small input before it
        takes its name: a file that would not give the same output is never written. An existing
        ``out`` is refused unless ``overwrite``; the model's own file never is written over.
        """
        import shutil

        from engine.atomic import atomic_write
        from engine.models.files import check_export, export_onnx, export_pth, load_model

        if fmt not in EXPORT_FORMATS:
            raise ArchivistError(f"invalid export format {fmt!r}: allowed are {', '.join(EXPORT_FORMATS)}")
        entry = self.get(name)
        out = Path(out)
        if out.is_dir():
            out = out / f"{entry.name}.{fmt}"
        if not out.parent.is_dir():
            raise ArchivistError(f"{out.parent}: output folder does not exist")
        from engine.ownership import check_absent, check_not_input

        check_not_input(out, [entry.path])
        check_absent(out, overwrite)
        loaded = load_model(entry.path)
        if fmt == "safetensors":
            def write(tmp: Path) -> None:
                shutil.copyfile(entry.path, tmp)
                check_export(tmp, "safetensors", loaded.module, loaded.spec, out)

            atomic_write(out, write)
        elif fmt == "pth":
            export_pth(out, loaded.module.state_dict(), entry.metadata, spec=loaded.spec)
        else:
            export_onnx(out, loaded.module, loaded.spec, metadata=entry.metadata)
        return out
