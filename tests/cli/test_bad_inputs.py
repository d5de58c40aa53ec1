"""Every bad input gives one line: a table of them, run through ``main(argv)`` in-process.

Each row builds its bad input in a fresh temporary folder and runs the command. The verdict is the
same for all: exit status not 0, exactly one line on stderr and it begins ``archivist: error:``,
no traceback anywhere, the row's words in that line, and nothing written: no file appears (in the
work folder or in ARCHIVIST_HOME) that was not there before, and no ``.part`` is left. The rows
that must leave the process (memory, a full disk) live at the end of this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from archivist_tui.cli import main
from tests.models import hostile_files as hostile

ROOT = Path(__file__).resolve().parents[2]
LONG = "n" * 300  # a file name over every common file system's 255-byte limit


class World:
    """The ordinary things a row needs (a model in the library, an image, a config), made on demand."""

    def __init__(self, tmp: Path, home: Path):
        self.tmp, self.home = tmp, home

    def p(self, name: str) -> str:
        return str(self.tmp / name)

    def net(self, act: str = "prelu", in_ch: int = 3, out_ch: int = 3, scale: int = 1):
        from engine.models.compact import SRVGGNetCompact

        torch.manual_seed(0)
        return SRVGGNetCompact(in_ch, out_ch, 8, 2, scale, act).eval()

    def model(self, name: str = "tiny") -> str:
        """A tiny Compact in the library under ``name``."""
        from engine.models import compact
        from engine.models.files import save_safetensors

        save_safetensors(self.home / "models" / f"{name}.safetensors", self.net().state_dict(),
                         compact.spec_for(8, 2, 1), role="custom", name=name)
        return name

    def pth(self, name: str = "m.pth", obj=None) -> str:
        torch.save(obj if obj is not None else {"params": self.net().state_dict()}, self.tmp / name)
        return self.p(name)

    def image(self, name: str = "in.png") -> str:
        from engine.inference.imageio import write_picture

        y, x = np.mgrid[0:32, 0:40].astype(np.float32)
        write_picture(self.tmp / name, np.stack([x / 40, y / 32, (x + y) / 72], -1))
        return self.p(name)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def fifo(self, name: str) -> str:
        """A named pipe: reading it would wait for a writer that never comes."""
        os.mkfifo(self.tmp / name)
        return self.p(name)

    def nan_model(self, name: str = "nan.pth") -> str:
        sd = {k: v.clone() for k, v in self.net().state_dict().items()}
        sd["body.2.weight"][0, 0, 0, 0] = float("nan")
        return self.pth(name, {"params": sd})

    def overflow_model(self) -> str:
        from engine.models import compact
        from engine.models.files import save_safetensors

        net = self.net()
        with torch.no_grad():
            for p in net.parameters():
                if p.dim() == 4:
                    p.mul_(1e15)
        save_safetensors(self.tmp / "overflow.safetensors", net.state_dict(), compact.spec_for(8, 2, 1))
        return self.p("overflow.safetensors")

    def loop(self, name: str = "loop") -> str:
        os.symlink(name, self.tmp / name)  # a link to itself
        return self.p(name)

    def bomb_png(self, name: str = "bomb.png") -> str:
        return self.write(name, hostile.png_declaring(100_000, 100_000))

    def truncated_png(self, name: str = "cut.png") -> str:
        data = Path(self.image("whole.png")).read_bytes()
        os.unlink(self.tmp / "whole.png")
        return self.write(name, data[: len(data) // 2])

    def library_copy(self, name: str = "copy.safetensors") -> str:
        """The bytes of a library model, at a path of our choosing."""
        model = self.model("src")
        return self.write(name, (self.home / "models" / f"{model}.safetensors").read_bytes())

    def cut(self, path: str, keep: int) -> str:
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[:keep])
        return path

    def dangling(self, name: str = "dangling.pth") -> str:
        os.symlink(self.p("gone.pth"), self.tmp / name)
        return self.p(name)

    def folder(self, name: str) -> str:
        (self.tmp / name).mkdir()
        return self.p(name)

    def config_with_truncated_pair(self) -> str:
        cfg = self.config()
        cut = Path(self.truncated_png()).read_bytes()
        os.unlink(self.p("cut.png"))
        self.write("pairs/gt/f0.png", cut)
        return cfg

    def config(self, name: str = "cfg.yaml", **overrides) -> str:
        from tests.train.trainkit import tiny_config, write_pairs

        if not (self.tmp / "pairs").exists():
            write_pairs(self.tmp / "pairs")
        self.write(name, yaml.safe_dump(tiny_config(**overrides)))
        return self.p(name)

    def job(self) -> str:
        """A queued restore job (the daemon need not run); returns its id."""
        import contextlib
        import io

        self.model("qtiny")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["restore", self.image("q.png"), "-o", self.p("q-out.png"), "-m", "qtiny", "--queue"]) == 0
        return out.getvalue().strip()


@dataclass
class Row:
    id: str
    argv: Callable[[World], list[str]]
    says: str  # words the error line must hold
    status: int | None = None  # exact exit status where it matters (2: usage)


def _latin1_profile(w: World) -> str:
    """A profile saved by an editor in Latin-1: ``café`` is one byte 0xe9, not UTF-8."""
    path = w.tmp / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\ndescription: caf\xe9\neffects: {}\n")
    return str(path)


def _hidden(w: World, package: str = "onnx") -> list[str]:
    sys.modules[package] = None  # type: ignore[assignment]  # importing it now fails, as if not installed
    return ["models", "export", w.model(), "--format", "onnx", "-o", w.p("t.onnx")]


ROWS = [
    # -- the command line itself
    Row("cli-unknown-command", lambda w: ["frobnicate"], "invalid choice", 2),
    Row("restore-missing-args", lambda w: ["restore"], "required", 2),
    Row("profiles-validate-latin1", lambda w: ["profiles", "validate", _latin1_profile(w)], "not UTF-8 text (byte 0xe9"),
    # A key given twice: plain YAML loading kept the second value without a word.
    Row("profiles-validate-duplicate-key",
        lambda w: ["profiles", "validate", w.write("dup.yaml", "name: dup\ndescription: x\neffects: {}\nname: other\n")],
        "key 'name' is given twice in one mapping (lines 1 and 4); keep one"),
    Row("train-duplicate-key", lambda w: ["train", w.write("dup.yaml", "name: dup\ndata:\n  clean: [f/]\n"
                                                             "  patch_size: 64\n  patch_size: 96\n")],
        "not valid YAML at line 5: key 'patch_size' is given twice"),
    Row("daemon-start-duplicate-key",
        lambda w: [(w.home / "config.yaml").write_text("queue:\n  max_attempts: 2\n  max_attempts: 9\n"),
                   "daemon", "start"][1:],
        "config.yaml: not valid YAML at line 3: key 'max_attempts' is given twice"),
    Row("daemon-start-missing-gpu",
        lambda w: [(w.home / "config.yaml").write_text("queue:\n  gpus: [0, 99]\n"), "daemon", "start"][1:],
        "queue.gpus = [0, 99] invalid: allowed "),
    Row("degrade-mix-latin1", lambda w: ["degrade", w.image(), "-o", w.p("d"), "--mix", _latin1_profile(w)],
        "not UTF-8 text"),
    # An unset shell variable ("-o $OUT") is an empty path: never the current folder.
    Row("restore-empty-output", lambda w: ["restore", w.image(), "-o", "", "-m", w.model()], "-o/--output: an empty path", 2),
    Row("restore-empty-input", lambda w: ["restore", "", "-o", w.p("x.png"), "-m", w.model()], "INPUT: an empty path", 2),
    Row("restore-empty-input-queued", lambda w: ["restore", "", "-o", w.p("x"), "-m", w.model(), "--queue"],
        "INPUT: an empty path", 2),
    Row("degrade-empty-output", lambda w: ["degrade", w.image(), "-o", "", "--profile", "normal"],
        "-o/--output: an empty path", 2),
    Row("restore-empty-work-dir", lambda w: ["restore", w.image(), "-o", w.p("x.png"), "-m", w.model(), "--work-dir", ""],
        "--work-dir: an empty path", 2),
    Row("cli-unknown-flag", lambda w: ["models", "import", "x.pth", "--frobnicate"], "unrecognized arguments", 2),
    Row("restore-tile-not-a-number", lambda w: ["restore", "a.png", "-o", "b.png", "-m", "x", "--tile", "abc"],
        "'abc' is not a whole number", 2),
    Row("restore-precision-unknown", lambda w: ["restore", "a.png", "-o", "b.png", "-m", "x", "--precision", "fp8"],
        "invalid choice", 2),
    Row("queue-priority-overflow", lambda w: ["queue", "priority", w.job(), "99999999999999999999999"],
        "out of range", 2),
    Row("queue-show-huge-id", lambda w: ["queue", "show", "99999999999999999999999"], "out of range", 2),
    Row("queue-option-priority-overflow",
        lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.model(), "--queue", "--priority", "1" + "0" * 30],
        "--priority: 1000000000000000000000000000000 out of range", 2),
    Row("restore-tile-overflow", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.model(), "--tile",
                                    "9" * 30], "out of range", 2),
    Row("train-stop-at-overflow", lambda w: ["train", w.config(), "--stop-at", "9" * 25], "out of range", 2),
    Row("models-import-scale-zero", lambda w: ["models", "import", w.pth(), "--scale", "0"], "allowed an integer 1 to 16", 2),
    Row("models-import-out-channels-2", lambda w: ["models", "import", w.pth(), "--out-channels", "2"], "invalid choice", 2),
    Row("queue-status-unknown", lambda w: ["queue", "list", "--status", "bogus"], "invalid choice", 2),
    Row("tui-screen-unknown", lambda w: ["tui", "--screen", "bogus"], "invalid choice", 2),
    # -- models: files that are not models, or not ones Archivist can use
    Row("models-import-missing", lambda w: ["models", "import", w.p("none.pth")], "no such file"),
    Row("models-import-folder", lambda w: ["models", "import", str(w.tmp)], "is a folder"),
    Row("models-import-empty", lambda w: ["models", "import", w.write("empty.pth", b"")], "empty file"),
    Row("models-import-text", lambda w: ["models", "import", w.write("notes.pth", "my notes\n" * 30)],
        "not a readable PyTorch model file"),
    Row("models-import-truncated-pth", lambda w: ["models", "import", w.write("cut.pth", Path(w.pth()).read_bytes()[:900])],
        "truncated or corrupt"),
    Row("models-import-truncated-safetensors",
        lambda w: ["models", "import", w.cut(w.library_copy("cut.safetensors"), 900)], "truncated or corrupt"),
    Row("models-import-suffix-unknown", lambda w: ["models", "import", w.write("m.tflite", b"tflite")],
        "unsupported model file type '.tflite'"),
    Row("models-import-code-pickle", lambda w: ["models", "import", w.pth("evil.pth", {"params": w.net().state_dict(),
                                                                                  "x": hostile.CodeRunner()})],
        "refused: the file holds Python objects"),
    Row("models-import-discriminator", lambda w: ["models", "import", w.pth("d.pth", hostile.discriminator_state())],
        "is a discriminator"),
    Row("models-import-unknown-arch", lambda w: ["models", "import", w.pth("u.pth", {"foo.weight": torch.zeros(3, 3)})],
        "unknown architecture"),
    Row("models-import-nan-weights", lambda w: ["models", "import", w.nan_model()], "weight body.2.weight holds 1 non-finite"),
    Row("models-import-ambiguous-compact",
        lambda w: ["models", "import", w.pth("c.pth", {"params": w.net("prelu", 3, 1, 4).state_dict()})],
        "3\u21924 channels \u00d72 or 3\u21921 channel \u00d74"),
    Row("models-import-relu-without-act", lambda w: ["models", "import", w.pth("r.pth", w.net("relu").state_dict())],
        "--act relu|leakyrelu"),
    Row("models-import-deep-metadata", lambda w: ["models", "import",
                                           str(hostile.deep_metadata_safetensors(w.tmp / "deep.safetensors"))],
        "nests deeper than 16 levels"),
    Row("models-import-declares-805M-floats", lambda w: ["models", "import",
                                                  str(hostile.declared_only_pth(w.tmp / "big.pth", 805_306_368))],
        "refused before reading its data"),
    Row("models-import-legacy-pickle-declares-805M-floats",
        lambda w: ["models", "import", str(hostile.legacy_declaring_pth(w.tmp / "old.pth", 805_306_368))],
        "refused before reading its data"),
    Row("models-import-legacy-pickle-declares-more-than-it-holds",
        lambda w: ["models", "import", str(hostile.legacy_declaring_pth(w.tmp / "old.pth", 1000))],
        "declares 4,000 bytes of tensor data but holds"),
    Row("models-import-20000-tensors", lambda w: ["models", "import",
                                           str(hostile.many_empty_tensors_safetensors(w.tmp / "many.safetensors",
                                                                                      20_000))],
        "20,000 tensors"),
    Row("models-import-header-past-end",
        lambda w: ["models", "import", w.write("h.safetensors", (10**6).to_bytes(8, "little") + b"{}")],
        "truncated or corrupt"),
    Row("models-import-header-too-big",
        lambda w: ["models", "import", w.write("h.safetensors", (9 << 20).to_bytes(8, "little") + b"{" + b" " * (9 << 20))],
        "9,437,184-byte safetensors header"),
    Row("models-import-tensor-outside-file",
        lambda w: ["models", "import", str(hostile.safetensors_with_header(
            w.tmp / "o.safetensors", {"body.0.weight": {"dtype": "F32", "shape": [8, 3, 3, 3],
                                                        "data_offsets": [0, 864]}}))], "lies outside the file"),
    Row("models-import-onnx-renamed-pth", lambda w: ["models", "import", str(hostile.onnx_renamed_pth(w.tmp / "m.pth"))],
        "an ONNX model, not a PyTorch file"),
    Row("models-import-onnx", lambda w: ["models", "import", str(hostile.onnx_renamed_pth(w.tmp / "m.onnx"))],
        "an ONNX file; Archivist imports"),
    Row("models-import-legacy-tar", lambda w: ["models", "import", str(hostile.legacy_tar_pth(w.tmp / "old.pth"))],
        "legacy tar format (PyTorch 0.3 and earlier)"),
    Row("models-import-safetensors-renamed-pth", lambda w: ["models", "import", w.library_copy("st.pth")],
        "a safetensors file with a .pth suffix: rename it to .safetensors"),
    Row("models-import-symlink-loop", lambda w: ["models", "import", w.loop()], "a symbolic link loop"),
    Row("models-import-dangling-symlink", lambda w: ["models", "import", w.dangling()], "a symbolic link to a missing file"),
    Row("models-import-name-too-long", lambda w: ["models", "import", w.p(LONG + ".pth")], "file name too long"),
    Row("models-import-bad-name", lambda w: ["models", "import", w.pth(), "--name", "bad name"], "invalid model name"),
    Row("models-import-existing-name", lambda w: ["models", "import", w.pth(), "--name", w.model()], "exists already"),
    Row("models-import-builtin-name", lambda w: ["models", "import", w.pth(), "--name", "archivist-starter"],
        "is a built-in model"),
    Row("models-import-pickled-list", lambda w: ["models", "import", w.pth("l.pth", [torch.zeros(3)])],
        "not a model file (holds a list"),
    Row("models-import-no-tensors", lambda w: ["models", "import", w.pth("n.pth", {"params": {"epoch": 3}})],
        "no tensors found"),
    Row("models-import-weights-do-not-fit",
        lambda w: ["models", "import", w.pth("f.pth", {**w.net().state_dict(), "body.2.weight": torch.zeros(16, 8, 3, 3)})],
        "weights do not fit"),
    Row("models-list-hostile-library-file",
        lambda w: ["models", "list"] if hostile.deep_metadata_safetensors(w.home / "models" / "deep.safetensors")
        else [], "deep.safetensors: unreadable model file in the library (metadata 'profiles' nests deeper"),
    Row("models-fetch-unknown", lambda w: ["models", "fetch", "no-such-model"], "no-such-model"),
    Row("models-info-unknown", lambda w: ["models", "info", "nope"], "no model named 'nope'"),
    Row("models-export-unknown", lambda w: ["models", "export", "nope", "--format", "pth", "-o", w.p("o.pth")],
        "no model named 'nope'"),
    Row("models-export-missing-folder", lambda w: ["models", "export", w.model(), "--format", "pth", "-o",
                                            w.p("no/such/o.pth")], "output folder does not exist"),
    Row("models-export-onnx-without-onnx", _hidden, "pip install 'archivist[onnx]'"),
    Row("models-export-onnx-without-onnxruntime", lambda w: _hidden(w, "onnxruntime"),
        "ONNX export needs the onnxruntime package, not installed here: pip install 'archivist[onnx]'"),
    Row("models-export-name-too-long", lambda w: ["models", "export", w.model(), "--format", "pth", "-o",
                                           w.p(LONG + ".pth")], "file name too long"),
    Row("models-rename-invalid", lambda w: ["models", "rename", w.model(), "bad/name"], "invalid model name"),
    Row("models-rename-builtin", lambda w: ["models", "rename", "archivist-starter", "mine"], "built-in"),
    Row("models-role-unknown", lambda w: ["models", "role", w.model(), "bogus"], "invalid choice", 2),
    Row("models-remove-unknown", lambda w: ["models", "remove", "nope"], "no model named 'nope'"),
    Row("models-remove-builtin", lambda w: ["models", "remove", "archivist-starter"], "built-in"),
    # -- restore and preview
    Row("restore-fifo-input", lambda w: ["restore", w.fifo("in.png"), "-o", w.p("o.png"), "-m", w.model()],
        "in.png: a FIFO (named pipe), not an image file"),
    Row("restore-device-input", lambda w: ["restore", "/dev/null", "-o", w.p("o.png"), "-m", w.model()],
        "/dev/null: a device, not an image file"),
    Row("degrade-fifo-profile", lambda w: ["degrade", w.image(), "-o", w.p("d"), "--profile", w.fifo("p.yaml")],
        "p.yaml: a FIFO (named pipe), not a profile file"),
    Row("restore-missing-input", lambda w: ["restore", w.p("none.png"), "-o", w.p("o.png"), "-m", w.model()],
        "no such file"),
    Row("restore-bad-output-suffix", lambda w: ["restore", w.image(), "-o", w.p("o.jpg"), "-m", w.model()],
        "must end in .png, .tif or .tiff"),
    Row("restore-unknown-model", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", "nope"],
        "no model named 'nope'"),
    Row("restore-strength-range", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.model() + ":1.5"],
        "strength 1.5 out of range"),
    Row("restore-sigma-on-compact", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m",
                                               w.model() + ":0.5:5"], "takes no noise level"),
    Row("restore-tile-too-small", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.model(), "--tile",
                                             "10"], "argument --tile: 10 invalid: allowed 0 (no tiling) or an integer 64 or more (pixels)", 2),
    Row("restore-nan-model", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.nan_model()],
        "body.2.weight"),
    Row("restore-non-finite-output", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.overflow_model()],
        "gave non-finite values"),
    Row("restore-model-symlink-loop", lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m", w.loop()],
        "a symbolic link loop"),
    Row("restore-deep-metadata-model",
        lambda w: ["restore", w.image(), "-o", w.p("o.png"), "-m",
                   str(hostile.deep_metadata_safetensors(w.tmp / "deep.safetensors"))], "nests deeper than 16"),
    Row("restore-decompression-bomb", lambda w: ["restore", w.bomb_png(), "-o", w.p("o.png"), "-m", w.model()],
        "declares 100000\u00d7100000 = 10,000,000,000 pixels"),
    Row("restore-truncated-png", lambda w: ["restore", w.truncated_png(), "-o", w.p("o.png"), "-m", w.model()],
        "the PNG image cannot be decoded (truncated or corrupt)"),
    Row("restore-not-an-image", lambda w: ["restore", w.write("fake.png", "hello"), "-o", w.p("o.png"), "-m",
                                           w.model()], "not a readable image"),
    Row("restore-empty-folder", lambda w: ["restore", w.folder("empty"), "-o", w.p("out/"), "-m", w.model()],
        "folder holds no images"),
    Row("restore-output-name-too-long", lambda w: ["restore", w.image(), "-o", w.p(LONG + ".png"), "-m", w.model()],
        "file name too long"),
    Row("restore-input-name-too-long", lambda w: ["restore", w.p(LONG + ".png"), "-o", w.p("o.png"), "-m",
                                                  w.model()], "file name too long"),
    Row("restore-fake-video", lambda w: ["restore", w.write("clip.mkv", "not a video"), "-o", w.p("o.mkv"), "-m",
                                         w.model()], "clip.mkv"),
    Row("preview-missing-input", lambda w: ["preview", w.p("none.png"), "-o", w.p("o.png"), "-m", w.model()],
        "none.png"),
    Row("preview-decompression-bomb", lambda w: ["preview", w.bomb_png(), "-o", w.p("o.png"), "-m", w.model()],
        "decompression bomb"),
    # -- profiles
    Row("profiles-show-unknown", lambda w: ["profiles", "show", "nope"], "nope"),
    Row("profiles-validate-missing", lambda w: ["profiles", "validate", w.p("none.yaml")], "none.yaml"),
    Row("profiles-validate-bad-yaml", lambda w: ["profiles", "validate", w.write("bad.yaml", "a: [1, 2\n")],
        "bad.yaml"),
    Row("profiles-validate-name-too-long", lambda w: ["profiles", "validate", w.p(LONG + ".yaml")],
        "file name too long"),
    Row("profiles-new-bad-name", lambda w: ["profiles", "new", "bad name"], "bad name"),
    Row("profiles-new-from-unknown", lambda w: ["profiles", "new", "mine", "--from", "nope"], "nope"),
    Row("profiles-preview-unknown", lambda w: ["profiles", "preview", "nope", "--clean", w.p("c.png"), "--damaged",
                                               w.p("d.png")], "profile or mix 'nope' not found"),
    Row("profiles-preview-damaged-exists", lambda w: ["profiles", "preview", "normal", "--clean", w.p("c.png"),
                                                      "--damaged", w.image("d.png")], "d.png: output exists"),
    Row("profiles-preview-same-file", lambda w: ["profiles", "preview", "normal", "--clean", w.p("c.png"),
                                                 "--damaged", w.p("c.png")], "are the same file"),
    Row("profiles-preview-suffix", lambda w: ["profiles", "preview", "normal", "--clean", w.p("c.jpg"),
                                              "--damaged", w.p("d.png")], "c.jpg: must end in .png"),
    Row("profiles-preview-frame-unreadable", lambda w: ["profiles", "preview", "normal", "--clean", w.p("c.png"),
                                                        "--damaged", w.p("d.png"), "--frame", w.write("f.png", "hi")],
        "f.png"),
    Row("models-speed-unknown", lambda w: ["models", "speed", "-m", "nope"], "no model named 'nope'"),
    Row("models-speed-size-small", lambda w: ["models", "speed", "-m", w.model(), "--size", "4"],
        "--size: 4 out of range: allowed an integer 8 to 16384", 2),
    Row("models-speed-seconds-nan", lambda w: ["models", "speed", "-m", w.model(), "--seconds", "nan"],
        "--seconds: nan out of range", 2),
    Row("preview-frame-without-input", lambda w: ["preview", "-o", w.p("o.png"), "-m", w.model(), "--frame", "3"],
        "--frame and --time choose a frame of INPUT"),
    # -- degrade
    Row("degrade-missing-input", lambda w: ["degrade", w.p("none.png"), "-o", w.p("ds"), "--profile", "normal"],
        "none.png"),
    Row("degrade-unknown-profile", lambda w: ["degrade", w.image(), "-o", w.p("ds"), "--profile", "nope"], "nope"),
    Row("degrade-decompression-bomb", lambda w: ["degrade", w.bomb_png(), "-o", w.p("ds"), "--profile", "normal"],
        "decompression bomb"),
    Row("degrade-truncated-png", lambda w: ["degrade", w.truncated_png(), "-o", w.p("ds"), "--profile", "normal"],
        "truncated or corrupt"),
    Row("degrade-output-name-too-long", lambda w: ["degrade", w.image(), "-o", w.p(LONG), "--profile", "normal"],
        "file name too long"),
    # -- train
    Row("train-missing-config", lambda w: ["train", w.p("none.yaml")], "none.yaml"),
    Row("train-bad-yaml", lambda w: ["train", w.write("bad.yaml", "network: [1\n")], "bad.yaml"),
    Row("train-bad-value", lambda w: ["train", w.config(**{"network.num_feat": -1})], "network.num_feat"),
    Row("train-unknown-key", lambda w: ["train", w.config(**{"network.frobnicate": 1})], "frobnicate"),
    Row("train-resume-unknown-run", lambda w: ["train", "--resume", "--name", "nope"], "nope"),
    Row("train-pretrained-nan", lambda w: ["train", w.config(**{"network.pretrained": w.nan_model()})],
        "body.2.weight holds 1 non-finite value"),
    Row("train-pretrained-deep-metadata",
        lambda w: ["train", w.config(**{"network.pretrained": str(hostile.deep_metadata_safetensors(
            w.tmp / "deep.safetensors"))})], "nests deeper than 16 levels"),
    Row("train-truncated-png-in-data", lambda w: ["train", w.config_with_truncated_pair()], "truncated or corrupt"),
    # -- docs
    Row("docs-unknown-guide", lambda w: ["docs", "nope"], "no guide named 'nope'"),
    Row("docs-name-too-long", lambda w: ["docs", LONG], "no guide named"),
    # -- runs, queue
    Row("runs-show-unknown", lambda w: ["runs", "show", "nope"], "no run named 'nope'"),
    Row("runs-promote-unknown", lambda w: ["runs", "promote", "nope", "--name", "m"], "no run named 'nope'"),
    Row("runs-remove-unknown", lambda w: ["runs", "remove", "nope"], "no run named 'nope'"),
    Row("runs-pause-unknown", lambda w: ["runs", "pause", "nope"], "nope"),
    Row("queue-show-unknown", lambda w: ["queue", "show", "4242"], "4242"),
    Row("queue-log-unknown", lambda w: ["queue", "log", "4242"], "4242"),
    Row("queue-cancel-unknown", lambda w: ["queue", "cancel", "4242"], "4242"),
    Row("queue-priority-unknown-job", lambda w: ["queue", "priority", "4242", "3"], "4242"),
    Row("queue-retry-unknown", lambda w: ["queue", "retry", "4242"], "4242"),
    Row("queue-remove-unknown", lambda w: ["queue", "remove", "4242"], "4242"),
    Row("queue-pause-unknown", lambda w: ["queue", "pause", "4242"], "4242"),
    Row("queue-resume-unknown", lambda w: ["queue", "resume", "4242"], "4242"),
    Row("runs-stop-unknown", lambda w: ["runs", "stop", "nope"], "nope"),
    Row("queue-restore-missing-input", lambda w: ["restore", w.p("none.png"), "-o", w.p("o.png"), "-m", w.model(),
                                                  "--queue"], "none.png"),
]


def _files(*roots: Path) -> set[str]:
    found = set()
    for root in roots:
        if root.exists():
            found |= {str(p) for p in root.rglob("*")}
    return found


def _empty_state_folder(path: Path, home: Path) -> bool:
    """ARCHIVIST_HOME's own folders (models/, runs/, profiles/) appear when first looked at."""
    return path.parent == home and path.is_dir() and not any(path.iterdir())


# Files a command may create while refusing: the queue's own database, opened to read a job.
_BENIGN = ("queue.db", "queue.db-wal", "queue.db-shm", "queue.lock")


@pytest.fixture
def hidden_modules_back():
    """A row may hide an optional package (sys.modules[name] = None); put everything back after."""
    saved = {name: sys.modules.get(name) for name in ("onnx", "onnxruntime")}
    yield
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_one_line_and_writes_nothing(row, tmp_path, archivist_home, capfd, hidden_modules_back):
    # capfd, not capsys: a C library (OpenCV, libpng) writes to file descriptor 2 past Python's sys.stderr.
    work = tmp_path / "work"
    work.mkdir()
    world = World(work, archivist_home)
    argv = row.argv(world)
    capfd.readouterr()
    before = _files(work, archivist_home)
    status = main(argv)
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert status != 0, (out, err)
    if row.status is not None:
        assert status == row.status, err
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), err
    assert "Traceback" not in out + err and "WARN" not in err
    assert row.says in lines[0], lines[0]
    new = {f for f in _files(work, archivist_home) - before
           if Path(f).name not in _BENIGN and not _empty_state_folder(Path(f), archivist_home)}
    assert not new, f"written while refusing: {sorted(new)}"
    assert not [f for f in _files(work, archivist_home) if f.endswith(".part")]


def test_the_table_covers_every_command_group():
    from archivist_tui.cli import COMMAND_MODULES

    groups = {r.id.split("-")[0] for r in ROWS}
    missing = set(COMMAND_MODULES) - groups - {"demo", "doctor", "daemon"}  # no bad input of their own
    assert not missing, missing
    assert len(ROWS) >= 60


# -- rows that must leave the process ------------------------------------------------------------

# VmHWM, the peak RSS of this process image: ru_maxrss would also count the forking parent's peak.
_MEASURE = textwrap.dedent("""
    import sys
    from archivist_tui.cli import main
    import engine.models.files, safetensors.torch  # everything the command imports, before the baseline

    def peak_kb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    base = peak_kb()
    status = main(sys.argv[1:])
    print(f"{status} {base} {peak_kb()}")
""")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """The issue's two files: a 3 MB .pth declaring 805 M float32 values, 800,000 empty tensors."""
    folder = tmp_path_factory.mktemp("bombs")
    return {"zip-bomb-pth": hostile.zip_bomb_pth(folder / "bomb.pth"),
            "800k-empty-tensors": hostile.many_empty_tensors_safetensors(folder / "many.safetensors", 800_000)}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["zip-bomb-pth", "800k-empty-tensors"])
def test_a_model_file_declaring_gigabytes_is_refused_in_bounded_memory(which, bombs, archivist_home):
    """Once 3.4 GB (the .pth) and 1.3 GB (the safetensors) of RSS before the refusal; now under 300 MB."""
    path = bombs[which]
    assert path.stat().st_size < 60 << 20
    run = subprocess.run([sys.executable, "-c", _MEASURE, "models", "import", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "ARCHIVIST_HOME": str(archivist_home)})
    status, base_kb, peak_kb = map(int, run.stdout.split())
    err = run.stderr.strip().splitlines()
    assert status == 1 and len(err) == 1 and err[0].startswith("archivist: error: "), run.stderr
    assert "refused" in err[0] or "not a model Archivist can use" in err[0]
    assert peak_kb < 300 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    assert peak_kb - base_kb < 64 * 1024, f"the refusal grew RSS by {(peak_kb - base_kb) / 1024:.0f} MB"


def _can_mount_tmpfs() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a user namespace to mount a small tmpfs")
@pytest.mark.parametrize("size", ["16k", "96k"])
def test_train_with_the_state_directory_on_a_full_disk_is_one_line(tmp_path, size):
    """Once two chained tracebacks (torch's writer, then the failure record). A real tmpfs fills up."""
    from tests.train.trainkit import tiny_config, write_pairs

    write_pairs(tmp_path / "pairs")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(**{"train.total_iters": 4, "train.checkpoint_every": 2})))
    home = tmp_path / "home"
    home.mkdir()
    code = "import sys; from archivist_tui.cli import main; sys.exit(main(sys.argv[1:]))"
    script = (f"mount -t tmpfs -o size={size} tmpfs {home} && "
              f"{sys.executable} -c '{code}' train {cfg} --device cpu; s=$?; "
              f"find {home} -name '*.part'; exit $s")
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "ARCHIVIST_HOME": str(home)})
    err = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(err) == 1, run.stderr
    assert err[0].startswith("archivist: error: ") and "no space left on the device" in err[0], err[0]
    assert "/runs/tiny/checkpoints/iter_" in err[0]
    assert run.stdout.strip() == ""  # no .part left on the full disk
