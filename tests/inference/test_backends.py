"""``--backend``: eager, torch.compile, CUDA graphs and TensorRT give the eager picture within one level.

On the CPU: auto is eager, compile matches eager (slow: inductor compiles C++), a backend that
cannot be built falls back with one line, tensorrt without its package is refused with the install
hint, the TensorRT engine cache's key and store. On a GPU (skipped elsewhere): fp16, bf16, compile,
CUDA graphs and TensorRT against fp32 eager, through tiles and a DRUNet stage.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.inference import backends
from engine.inference.backends import (
    Step,
    cached_engine,
    check_backend,
    engine_cache_key,
    export_onnx_for_tensorrt,
    plan_steps,
)
from engine.inference.chain import Chain, Stage

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (parity of fp16, bf16, compile, CUDA graphs, "
                                "TensorRT against fp32 eager)")
SHA = "ab" * 32


def _frames(n=2, h=40, w=72, seed=0) -> np.ndarray:
    """uint8 RGB frames with gradients, hard edges and grain: what film frames hold."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(n):
        img = np.stack([x / w, y / h, ((x // 7 + y // 5 + i) % 2).astype(np.float32)], axis=-1)
        img = img * 0.8 + 0.1 + rng.normal(0, 0.03, img.shape)
        frames.append(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int32) - b.astype(np.int32))


@pytest.fixture
def hidden_tensorrt(monkeypatch):
    """TensorRT made unimportable, as on a machine without it (None in sys.modules stops an import)."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


# -- choosing a backend ---------------------------------------------------------------------------
def test_auto_on_the_cpu_is_eager(tiny_compact, caplog):
    path, _ = tiny_compact
    caplog.set_level(logging.INFO, logger="engine.inference.chain")
    chain = Chain.load([Stage(str(path))], device="cpu", backend="auto")
    assert chain.backend == "eager"
    assert [s.runner.steps for s in chain.stages] == [[Step("eager")]]
    assert "backend auto on cpu: eager" in caplog.text
    frames = _frames()
    eager = Chain.load([Stage(str(path))], device="cpu", backend="eager")
    assert np.array_equal(chain.run_batch(frames), eager.run_batch(frames))
    assert chain.stages[0].runner.built() == {}  # nothing compiled, nothing captured


def test_plans(hidden_tensorrt):
    assert plan_steps("auto", "cpu") == [Step("eager")]
    assert plan_steps("compile", "cpu") == [Step("compile"), Step("eager")]
    # On CUDA compiled networks are replayed through CUDA graphs unless told otherwise.
    assert plan_steps("auto", "cuda") == [Step("compile", True), Step("eager")]
    assert plan_steps("compile", "cuda", cuda_graphs=False) == [Step("compile"), Step("eager")]
    assert plan_steps("eager", "cuda") == [Step("eager")]
    assert plan_steps("eager", "cuda", cuda_graphs=True) == [Step("eager", True), Step("eager")]
    assert plan_steps("tensorrt", "cuda") == [Step("tensorrt"), Step("compile", True), Step("eager")]
    assert str(Step("compile", True)) == "compile+cudagraphs"
    with pytest.raises(ArchivistError, match="backend tensorrt needs a CUDA device"):
        plan_steps("tensorrt", "cpu")
    with pytest.raises(ArchivistError, match="CUDA graphs need a CUDA device"):
        plan_steps("eager", "cpu", cuda_graphs=True)
    with pytest.raises(ArchivistError, match="invalid backend 'fast': allowed are auto, eager, compile, tensorrt"):
        plan_steps("fast", "cpu")


def test_tensorrt_not_importable_gives_the_install_hint(hidden_tensorrt, tiny_compact, tmp_path, capsys):
    path, _ = tiny_compact
    with pytest.raises(ArchivistError) as err:
        check_backend("tensorrt")
    assert str(err.value).startswith("backend tensorrt needs the tensorrt package")
    assert "pip install tensorrt" in str(err.value)
    with pytest.raises(ArchivistError, match="pip install tensorrt"):
        Chain.load([Stage(str(path))], device="cpu", backend="tensorrt")

    import cv2

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _frames(1)[0])
    out = tmp_path / "out.png"
    for extra in ([], ["--queue"]):
        code = main(["restore", str(src), "-o", str(out), "-m", str(path), "--backend", "tensorrt", *extra])
        err_text = capsys.readouterr().err
        assert code == 1
        lines = err_text.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("archivist: error: ") and "pip install tensorrt" in lines[0]
        assert "Traceback" not in err_text
    assert not out.exists()
    from engine.queue import Store

    with Store() as store:
        assert store.jobs() == []  # the queued job was refused at submit


def _scans(tmp_path: Path) -> Path:
    """A folder with one small image: a restore of a folder needs something to restore."""
    import cv2

    folder = tmp_path / "scans"
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "a.png"), np.full((24, 32, 3), 128, np.uint8))
    return folder


def test_job_spec_backend_is_validated_by_the_same_code(tmp_path, hidden_tensorrt):
    from engine.queue.kinds import get_kind

    validate = get_kind("restore").validate
    base = {"input": str(_scans(tmp_path)), "output": str(tmp_path / "o") + "/", "models": ["archivist-starter"]}
    assert "backend" not in validate(dict(base))  # auto: the spec of an ordinary job stays as it was
    assert "backend" not in validate({**base, "backend": "auto"})
    assert validate({**base, "backend": "compile"})["backend"] == "compile"
    with pytest.raises(ArchivistError, match="^backend = 'fast' invalid: allowed one of auto, eager, compile, tensorrt$"):
        validate({**base, "backend": "fast"})
    with pytest.raises(ArchivistError, match="^backend tensorrt needs the tensorrt package.*pip install"):
        validate({**base, "backend": "tensorrt"})
    with pytest.raises(ArchivistError, match="^backend = 3 invalid: allowed one of auto, eager"):
        validate({**base, "backend": 3})


def test_queue_submit_keeps_the_backend(tmp_path, tiny_compact, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path, _ = tiny_compact
    assert main(["restore", str(_scans(tmp_path)), "-o", str(tmp_path / "o") + "/", "-m", str(path), "--queue",
                 "--backend", "compile"]) == 0
    jid = int(capsys.readouterr().out.strip())
    from engine.queue import Store

    with Store() as store:
        assert store.get(jid).spec["backend"] == "compile"


@pytest.mark.slow  # torch.compile's first use imports dynamo and inductor: ~7 s here
def test_a_backend_that_fails_to_build_falls_back_with_one_line(tiny_compact, caplog):
    # An unknown compile mode is a real torch.compile failure, raised when the first frame comes.
    path, _ = tiny_compact
    chain = Chain.load([Stage(str(path))], device="cpu", backend="compile", compile_mode="no-such-mode")
    frames = _frames()
    caplog.set_level(logging.WARNING)
    got = chain.run_batch(frames)
    chain.run_batch(frames[:1])
    chain.run_batch(_frames(1, 24, 32))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("backend compile could not be built for model 'tiny' at 2×3×40×72 (")
    assert "no-such-mode" in warnings[0] and warnings[0].endswith("falling back to eager")
    eager = Chain.load([Stage(str(path))], device="cpu", backend="eager")
    assert np.array_equal(got, eager.run_batch(frames))


@pytest.mark.slow  # torch.compile's first use imports dynamo and inductor: ~7 s here
def test_auto_builds_a_shape_only_once_it_has_repeated(tiny_compact, caplog):
    """auto's rule, run on the CPU through the runner a GPU would use: a shape is built at its AUTO_AFTER-th
    sighting, not before (a build that fails here shows exactly when it was tried), and the fallback is kept."""
    _, net = tiny_compact
    runner = backends.StageRunner(net, [Step("compile"), Step("eager")], "tiny", SHA,
                                  build_after=backends.AUTO_AFTER, compile_mode="no-such-mode")
    x = torch.rand(1, 3, 16, 24).contiguous(memory_format=torch.channels_last)
    caplog.set_level(logging.WARNING)
    with torch.inference_mode():
        want = net(x)
        for _ in range(backends.AUTO_AFTER - 1):
            assert torch.equal(runner(x), want)
        other = torch.rand(2, 3, 16, 24).contiguous(memory_format=torch.channels_last)
        assert torch.equal(runner(other), net(other))  # another shape counts on its own
        assert runner.built() == {} and not caplog.records  # not tried yet
        assert torch.equal(runner(x), want)
    assert len(caplog.records) == 1 and "falling back to eager" in caplog.records[0].getMessage()
    assert list(runner.built().values()) == ["eager"] and runner.steps == [Step("eager")]


@pytest.mark.slow
def test_compile_matches_eager_on_the_cpu_through_tiles_and_drunet(tiny_compact, tiny_drunet):
    """fp32 compile against fp32 eager: within one 8-bit level, tiles compiled per tile shape, σ channel kept."""
    cpath, _ = tiny_compact
    dpath, _ = tiny_drunet
    stages = [Stage(str(cpath)), Stage(str(dpath), 0.5, 5.0)]
    frames = _frames(2, 40, 72)
    eager = Chain.load(stages, device="cpu", backend="eager", tile=64, tile_overlap=16)
    compiled = Chain.load(stages, device="cpu", backend="compile", tile=64, tile_overlap=16)
    want = eager.run_batch(frames)
    got = compiled.run_batch(frames)
    assert _levels(got, want).max() <= 1
    # Two tiles of 40×64 a frame: one compiled shape per stage, the DRUNet one with its σ channel.
    built = [s.runner.built() for s in compiled.stages]
    assert [list(b.values()) for b in built] == [["compile"], ["compile"]]
    assert [next(iter(b))[0] for b in built] == [(2, 3, 40, 64), (2, 4, 40, 64)]
    # The last, smaller batch of a video runs padded to the compiled batch: no second compile.
    one = compiled.run_batch(frames[1:])
    assert _levels(one, want[1:]).max() <= 1
    assert [s.runner.built() for s in compiled.stages] == built
    # Float frames as well (what the video pipeline hands over for > 8-bit sources).
    f = frames.astype(np.float32) / 255
    np.testing.assert_allclose(compiled.run_batch(f), eager.run_batch(f), atol=1 / 255)


@pytest.mark.slow
def test_restore_command_runs_images_and_video_through_the_backend_it_is_given(tiny_compact, tmp_path, caplog):
    """--backend reaches the networks from both of restore's paths (a folder of images, a video)."""
    import cv2

    from engine.video.probe import probe
    from engine.video.synthetic import write_test_clip

    path, _ = tiny_compact
    caplog.set_level(logging.INFO, logger="engine.inference.backends")
    images = tmp_path / "scans"
    images.mkdir()
    frame = _frames(1, 32, 48)[0]
    cv2.imwrite(str(images / "a.png"), frame[..., ::-1])
    for backend in ("eager", "compile"):
        assert main(["restore", str(images), "-o", str(tmp_path / backend) + "/", "-m", str(path),
                     "--device", "cpu", "--backend", backend]) == 0
    assert "model 'tiny': compile for input 1×3×32×48" in caplog.text
    got, want = (cv2.imread(str(tmp_path / b / "a.png")) for b in ("compile", "eager"))
    assert _levels(got, want).max() <= 1
    caplog.clear()
    clip = write_test_clip(tmp_path / "reel.mkv", frames=5, width=48, height=32)
    out = tmp_path / "reel-out.mkv"
    assert main(["restore", str(clip), "-o", str(out), "-m", str(path), "--device", "cpu", "--backend", "compile",
                 "--batch", "2", "--codec", "ffv1"]) == 0
    assert "model 'tiny': compile for input 2×3×32×48" in caplog.text
    assert probe(out).frame_count == 5  # the last frame, alone, ran padded to the batch of two


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_the_cpu_and_says_what_it_did_not_measure(capsys, monkeypatch):
    """benchmarks/bench_backends.py, the script that measures issue 24 on a GPU, end to end here."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_backends", ROOT / "benchmarks" / "bench_backends.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_backends", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    assert bench.main(["--device", "cpu", "--size", "48x32", "--big", "64x48", "--nf", "8", "--nc", "2",
                       "--seconds", "0.05", "--pipeline-frames", "12", "--only", "fp", "--codec", "ffv1"]) == 0
    text = capsys.readouterr().out
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]
    rows = {tuple(c[:4]): c[4:] for c in cells if c[0] in ("48×32", "64×48")}
    fps = rows[("48×32", "fp32", "eager", "1")]
    assert float(fps[0]) > 0 and fps[3] == "0.00"  # the reference against itself
    assert rows[("48×32", "fp16", "compile+cudagraphs", "4")][0] == "not measured: needs a CUDA device"
    assert rows[("48×32", "fp16", "tensorrt", "1")][0] == "not measured: needs a CUDA device"
    assert rows[("64×48", "fp16", "eager", "1")][0] == "not measured: needs a CUDA device"
    assert ("48×32", "bf16", "eager", "1") not in rows  # --only fp: bf16 left out
    assert "failed" not in text, text
    pipeline = next(c for c in cells if c[0].startswith("restore_video, fp32 eager batch 1"))
    assert float(pipeline[1]) > 0 and "of min(model only" in pipeline[2]


# -- the TensorRT engine cache --------------------------------------------------------------------
def test_engine_cache_key_names_everything_an_engine_depends_on():
    args = dict(model_sha256=SHA, shape=(1, 3, 1080, 1920), precision="fp16", gpu="NVIDIA H200 sm_90",
                versions={"tensorrt": "10.13.0", "torch": "2.11.0", "cuda": "13.0"})
    key = engine_cache_key(**args)
    assert key == engine_cache_key(**args) and len(key) == 32 and int(key, 16) >= 0
    reordered = dict(args, versions={"cuda": "13.0", "torch": "2.11.0", "tensorrt": "10.13.0"})
    assert engine_cache_key(**reordered) == key
    changes = [("model_sha256", "cd" * 32), ("shape", (4, 3, 1080, 1920)), ("shape", (1, 4, 1080, 1920)),
               ("precision", "bf16"), ("gpu", "NVIDIA H100 80GB HBM3 sm_90"),
               ("versions", {"tensorrt": "10.13.1", "torch": "2.11.0", "cuda": "13.0"}),
               ("versions", {"tensorrt": "10.13.0", "torch": "2.12.0", "cuda": "13.0"}),
               ("versions", {"tensorrt": "10.13.0", "torch": "2.11.0", "cuda": "12.8"})]
    keys = {engine_cache_key(**dict(args, **{name: value})) for name, value in changes}
    assert key not in keys and len(keys) == len(changes)
    for name, bad in (("model_sha256", "xyz"), ("shape", (1, 3, 1080)), ("shape", (0, 3, 8, 8)),
                      ("precision", "fp8")):
        with pytest.raises(ValueError, match=name.split("_")[0]):
            engine_cache_key(**dict(args, **{name: bad}))


def test_engine_cache_stores_once_and_reuses(archivist_home):
    built = []

    def build() -> bytes:
        built.append(1)
        return b"ENGINE" + bytes(range(16))

    def load(blob: bytes):
        return blob if blob.startswith(b"ENGINE") else None  # a runtime refuses bytes it cannot use

    describe = {"model_sha256": SHA, "shape": [1, 3, 64, 64]}
    key = engine_cache_key(SHA, (1, 3, 64, 64), "fp16", "gpu", {})
    assert cached_engine(key, build, load, describe) == b"ENGINE" + bytes(range(16))
    assert cached_engine(key, build, load, describe) == b"ENGINE" + bytes(range(16))
    assert len(built) == 1
    folder = archivist_home / "cache" / "tensorrt"
    assert sorted(p.name for p in folder.iterdir()) == [f"{key}.engine", f"{key}.json"]
    assert json.loads((folder / f"{key}.json").read_text()) == describe
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    umask = os.umask(0)
    os.umask(umask)
    # Inside the private folder the file follows the umask, as every file of the state directory does.
    assert stat.S_IMODE((folder / f"{key}.engine").stat().st_mode) == 0o666 & ~umask
    # A damaged engine (another TensorRT's, a torn file) is built again and replaced.
    (folder / f"{key}.engine").write_bytes(b"garbage")
    assert cached_engine(key, build, load, describe).startswith(b"ENGINE")
    assert len(built) == 2 and (folder / f"{key}.engine").read_bytes().startswith(b"ENGINE")


@pytest.mark.slow  # the ONNX exporter and onnxruntime: ~2.5 s here
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_onnx_handed_to_tensorrt(tiny_drunet, tmp_path, dtype):
    """Static shape, float32 in and out, the network itself in the engine's precision (strong typing)."""
    onnx = pytest.importorskip("onnx")
    _, net = tiny_drunet
    shape = (2, 4, 24, 32)  # DRUNet: the image and its σ channel
    path = tmp_path / "net.onnx"
    export_onnx_for_tensorrt(net.to(dtype), shape, dtype, path)
    graph = onnx.load(str(path)).graph
    for io in (graph.input[0], graph.output[0]):
        assert io.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == list(shape)
    want = {torch.float32: onnx.TensorProto.FLOAT, torch.bfloat16: onnx.TensorProto.BFLOAT16}[dtype]
    weights = [init.data_type for init in graph.initializer if len(init.dims) == 4]
    assert weights and set(weights) == {want}
    if dtype == torch.float32:
        import onnxruntime as ort

        x = torch.rand(shape)
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4)


# -- on a GPU -------------------------------------------------------------------------------------
@pytest.fixture
def starter():
    """The shipped 48nf16nc Compact: real weights, so parity is measured where it matters."""
    from engine.models.library import Library

    return str(Library().resolve("archivist-starter"))


def _parity(got: np.ndarray, want: np.ndarray, most: int, share_within_one: float) -> None:
    levels = _levels(got, want)
    assert levels.max() <= most, f"max {levels.max()} levels"
    assert (levels <= 1).mean() >= share_within_one, f"{(levels <= 1).mean():.5f} within one level"


@needs_cuda
@pytest.mark.parametrize("backend,precision,graphs", [
    ("eager", "fp16", None), ("compile", "fp16", None), ("compile", "fp16", False), ("eager", "fp16", True),
])
def test_gpu_fp16_and_compile_within_one_level_of_fp32_eager(starter, backend, precision, graphs):
    frames = _frames(4, 270, 480)
    want = Chain.load([Stage(starter)], device="cuda", precision="fp32", backend="eager").run_batch(frames)
    chain = Chain.load([Stage(starter)], device="cuda", precision=precision, backend=backend, cuda_graphs=graphs)
    for _ in range(2):  # the second call replays what the first built
        _parity(chain.run_batch(frames), want, 1, 1.0)


@needs_cuda
@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_gpu_bf16_within_three_levels_and_mostly_one(starter, backend):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    frames = _frames(4, 270, 480)
    want = Chain.load([Stage(starter)], device="cuda", precision="fp32", backend="eager").run_batch(frames)
    got = Chain.load([Stage(starter)], device="cuda", precision="bf16", backend=backend).run_batch(frames)
    _parity(got, want, 3, 0.999)


@needs_cuda
@pytest.mark.parametrize("backend", ["compile", "tensorrt"])
def test_gpu_backends_through_tiles_and_drunet(starter, tiny_drunet, backend):
    if backend == "tensorrt" and backends.tensorrt_missing():
        pytest.skip(f"tensorrt backend: {' and '.join(backends.tensorrt_missing())} not installed")
    dpath, _ = tiny_drunet
    stages = [Stage(starter), Stage(str(dpath), 0.5, 5.0)]
    frames = _frames(2, 200, 330)
    want = Chain.load(stages, device="cuda", precision="fp32", backend="eager", tile=128).run_batch(frames)
    chain = Chain.load(stages, device="cuda", precision="fp16", backend=backend, tile=128)
    _parity(chain.run_batch(frames), want, 1, 1.0)
    assert all(str(next(iter(s.runner.built().values()))).startswith(backend) for s in chain.stages)


@needs_cuda
def test_gpu_auto_compiles_a_shape_once_it_repeats(starter, hidden_tensorrt):
    chain = Chain.load([Stage(starter)], device="cuda", precision="fp16", backend="auto")
    frames = _frames(1, 144, 256)
    for _ in range(backends.AUTO_AFTER - 1):
        chain.run_batch(frames)
    assert chain.stages[0].runner.built() == {}
    chain.run_batch(frames)
    assert list(chain.stages[0].runner.built().values()) == ["compile+cudagraphs"]


@needs_cuda
def test_gpu_tensorrt_engine_is_cached_and_reused(starter, archivist_home):
    if backends.tensorrt_missing():
        pytest.skip(f"{' and '.join(backends.tensorrt_missing())} not installed")
    frames = _frames(1, 64, 96)
    first = Chain.load([Stage(starter)], device="cuda", precision="fp16", backend="tensorrt").run_batch(frames)
    engines = sorted((archivist_home / "cache" / "tensorrt").glob("*.engine"))
    assert len(engines) == 1
    stamp = engines[0].stat().st_mtime_ns
    again = Chain.load([Stage(starter)], device="cuda", precision="fp16", backend="tensorrt").run_batch(frames)
    assert engines[0].stat().st_mtime_ns == stamp and np.array_equal(first, again)
