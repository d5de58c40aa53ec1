"""One rule, two faces: the engine's refusals name the document's key (``segment_frames``), the
command line shows the same refusal with its flag (``--segment-frames``), and a queued job's
validation names the spec key. Each case goes through ``main([...])`` and through the engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archivist_tui.cli import main
from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError
from engine.video.synthetic import write_test_clip

MODEL = "archivist-starter"  # built in: refusals here come before any frame is restored


@pytest.fixture
def clip(tmp_path):
    return write_test_clip(tmp_path / "in.mkv", frames=2)


def _one_line(capsys, argv, code=1) -> str:
    """The one error line (after the stream plan a queued video prints first)."""
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("archivist: error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err)
    return errors[0].removeprefix("archivist: error: ")


# (extra restore flags, output name, the line through the CLI, VideoOptions keywords, the engine's line)
VIDEO_CASES = [
    (["--segment-frames", "0"], "o.mkv", "--segment-frames 0 invalid: allowed an integer 1 or more (frames)",
     {"segment_frames": 0}, "segment_frames = 0 invalid: allowed an integer 1 or more (frames)"),
    (["--duration", "0"], "o.mkv", "--duration 0 invalid: allowed a number > 0 (seconds)",
     {"duration": 0.0}, "duration = 0.0 invalid: allowed null or a number > 0 (seconds)"),
    (["--crf", "80", "--codec", "x264"], "o.mkv", "--crf 80 invalid: allowed a number 0 to 51",
     {"crf": 80.0, "codec": "x264"}, "crf = 80.0 invalid: allowed null or a number 0 to 51"),
    (["--batch", "0"], "o.mkv", "--batch 0 invalid: allowed an integer 1 or more (frames)",
     {"batch": 0}, "batch = 0 invalid: allowed an integer 1 or more (frames)"),
    (["--preset", "warp"], "o.mkv", "--preset 'warp' invalid: allowed one of ultrafast",
     {"preset": "warp"}, "preset = 'warp' invalid: allowed null or one of ultrafast"),
    (["--deinterlace", "--ivtc"], "o.mkv", "--deinterlace and --ivtc exclude each other: choose one",
     {"deinterlace": True, "ivtc": True}, "deinterlace and ivtc exclude each other: choose one"),
]


@pytest.mark.parametrize(("flags", "output", "cli_line", "keywords", "engine_line"), VIDEO_CASES,
                         ids=[c[3] and next(iter(c[3])) for c in VIDEO_CASES])
def test_a_video_option_is_refused_by_flag_on_the_command_line_and_by_key_in_the_engine(
        clip, tmp_path, capsys, flags, output, cli_line, keywords, engine_line):
    from engine.queue import QueueClient
    from engine.video.options import VideoOptions

    for queue in ([], ["--queue"]):
        line = _one_line(capsys, ["restore", str(clip), "-o", str(tmp_path / output), "-m", MODEL, "--device", "cpu",
                                  *flags, *queue])
        assert line.startswith(cli_line), line
    with pytest.raises((InvalidValue, Conflict)) as caught:
        VideoOptions(**keywords)
    assert str(caught.value).startswith(engine_line), caught.value
    # A queued job's spec: checked at submit by the same declarations, named by key, nothing queued.
    with QueueClient() as q:
        with pytest.raises(ArchivistError) as caught:
            q.submit("restore", {"input": str(clip), "output": str(tmp_path / output), "models": [MODEL],
                                 "video": keywords})
        said = str(caught.value)  # the spec's keys: the options are its ``video`` section
        assert "video." in said and engine_line in said.replace("video.", "") and "--" not in said, said
        assert q.list_jobs() == []
    assert not (tmp_path / output).exists()


def test_a_refusal_that_depends_on_the_output_names_the_flag_or_the_key(clip, tmp_path, capsys):
    from engine.video.options import VideoOptions
    from engine.video.plan import plan_restore

    base = ["restore", str(clip), "-m", MODEL, "--device", "cpu"]
    line = _one_line(capsys, [*base, "-o", str(tmp_path / "o.avi"), "--codec", "x264"])
    assert line == "--codec 'x264' invalid: allowed ffv1 (what a .avi file holds)"
    with pytest.raises(InvalidValue, match=r"^codec = 'x264' invalid: allowed ffv1 \(what a .avi file holds\)$"):
        plan_restore(clip, tmp_path / "o.avi", VideoOptions(codec="x264"))

    line = _one_line(capsys, [*base, "-o", str(tmp_path / "o.mkv"), "--crf", "20"])
    assert line == "--crf applies to x264 and x265; this output is encoded with ffv1 (choose --codec x264 or x265)"
    with pytest.raises(Conflict, match=r"^crf applies to x264 and x265; this output is encoded with ffv1 \(choose codec x264 or x265\)$"):
        plan_restore(clip, tmp_path / "o.mkv", VideoOptions(crf=20))

    line = _one_line(capsys, [*base, "-o", str(tmp_path / "o.mkv"), "--encoder-opt", "tune"])
    assert line == "--encoder-opt 'tune' invalid: allowed KEY=VALUE (e.g. tune=grain)"


def test_a_rule_between_two_options_names_both_flags(tmp_path, capsys):
    """ProRes 4:2:2 at an odd width: the way out is one of two options, each named as its face names it."""
    from engine.video.options import VideoOptions
    from engine.video.plan import plan_restore

    odd = write_test_clip(tmp_path / "odd.mkv", frames=2, width=65, height=48, codec="ffv1", pix_fmt="bgr0")
    line = _one_line(capsys, ["restore", str(odd), "-o", str(tmp_path / "o.mov"), "-m", MODEL, "--codec", "prores",
                              "--encoder-opt", "profile=3"])
    assert line.endswith("65 wide: use --pad-even, or --encoder-opt profile=4 (4444)"), line
    with pytest.raises(Conflict, match=r"65 wide: use pad_even, or encoder_opts profile=4 \(4444\)$"):
        plan_restore(odd, tmp_path / "o.mov", VideoOptions(codec="prores", encoder_opts={"profile": "3"}))


def test_text_values_are_refused_by_flag_or_key(clip, tmp_path, capsys):
    from engine.video.options import parse_fps, parse_time

    base = ["restore", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", MODEL, "--device", "cpu"]
    assert _one_line(capsys, [*base, "--start", "1:x"]).startswith("--start '1:x' invalid: allowed seconds")
    with pytest.raises(InvalidValue, match=r"^start = '1:x' invalid: allowed seconds"):
        parse_time("1:x", "start")
    frames = tmp_path / "frames"
    assert main(["restore", str(clip), "-o", f"{frames}/", "-m", MODEL, "--device", "cpu"]) == 0
    capsys.readouterr()
    seq = ["restore", str(frames), "-o", str(tmp_path / "s.mkv"), "-m", MODEL, "--device", "cpu"]
    assert _one_line(capsys, [*seq, "--fps", "0"]).startswith("--fps '0' invalid: allowed a number")
    with pytest.raises(InvalidValue, match=r"^fps = '0' invalid: allowed a number"):
        parse_fps("0")
    # A rule between two keys: the command line names both flags.
    line = _one_line(capsys, [*seq, "--fps", "24", "--start", "1"])
    assert line == "--start applies to video files, not to an image sequence (--fps)"


def test_preview_frame_is_refused_by_flag_or_key(clip, tmp_path, capsys):
    from engine.video.preview import preview_frame

    line = _one_line(capsys, ["preview", str(clip), "-m", MODEL, "-o", str(tmp_path / "p.png"), "--device", "cpu",
                              "--frame", "-1"])
    assert line == "--frame -1 invalid: allowed an integer 0 or more"
    with pytest.raises(InvalidValue, match=r"^frame = -1 invalid: allowed an integer 0 or more$"):
        preview_frame(clip, None, tmp_path / "p.png", frame=-1)
    assert not (tmp_path / "p.png").exists()


def test_cluster_address_is_refused_by_flag_or_key(clip, tmp_path, capsys):
    from engine.cluster import check_address
    from engine.queue import QueueClient

    line = _one_line(capsys, ["restore", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", MODEL, "--cluster", "x y"])
    assert line == "--cluster 'x y' invalid: allowed auto, local, ray://HOST:PORT or HOST:PORT"
    with pytest.raises(InvalidValue, match=r"^cluster = 'x y' invalid"):
        check_address("x y")
    with QueueClient() as q, pytest.raises(ArchivistError, match=r"cluster = 'x y' invalid") as caught:
        q.submit("restore", {"input": str(clip), "output": str(tmp_path / "o.mkv"), "models": [MODEL],
                             "cluster": "x y"})
    assert "--cluster" not in str(caught.value)


def test_degrade_numbers_are_refused_by_flag_or_key(tmp_path, capsys):
    import cv2
    import numpy as np

    from engine.degrade.dataset import check_dataset
    from engine.degrade.library import load_profile

    src = tmp_path / "clean"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((32, 32, 3), np.uint8))
    base = ["degrade", str(src), "-o", str(tmp_path / "ds"), "--profile", "subtle"]
    # Bounds the parser knows are refused there (exit 2), in int_arg's words; one --seed wording everywhere.
    assert _one_line(capsys, [*base, "--crop", "4"], 2).startswith(
        "argument --crop: 4 out of range: allowed an integer 8 or more")
    assert _one_line(capsys, [*base, "--seed", "-1"], 2).startswith(
        "argument --seed: -1 out of range: allowed an integer 0 or more")
    assert _one_line(capsys, [*base, "--crop", "48"]).endswith("32x32 is smaller than --crop 48; allowed: a crop up to 32")
    profile = load_profile("subtle")
    for keywords, words in (({"crop": 4}, "^crop = 4 invalid"), ({"seed": -1}, "^seed = -1 invalid"),
                            ({"count": 0}, "^count = 0 invalid"), ({"workers": 0}, "^workers = 0 invalid"),
                            ({"clip_length": 0}, "^clip_length = 0 invalid"),
                            ({"crop": 48}, "32x32 is smaller than crop 48; allowed: a crop up to 32$")):
        with pytest.raises((InvalidValue, Conflict), match=words):
            check_dataset(src, tmp_path / "ds", profile, **keywords)
    assert not (tmp_path / "ds").exists()


def test_after_names_the_flag_or_the_key(clip, tmp_path, capsys):
    from engine.queue import QueueClient

    line = _one_line(capsys, ["restore", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", MODEL, "--queue",
                              "--after", "99"])
    assert line == "--after 99: no job #99 in the queue"
    with QueueClient() as q:
        with pytest.raises(Conflict, match=r"^after 99: no job #99 in the queue$"):
            q.submit("restore", {"input": str(clip), "output": str(tmp_path / "o.mkv"), "models": [MODEL]},
                     after=99)
        assert q.list_jobs() == []


def test_a_queued_tile_below_64_fails_at_submit_in_one_line(clip, tmp_path, capsys):
    """``restore --tile 32 --queue``: refused when submitted (not in the worker), naming --tile; the
    same spec submitted through the engine names the key ``tile``."""
    from engine.queue import QueueClient

    line = _one_line(capsys, ["restore", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", MODEL, "--tile", "32",
                              "--queue"], code=2)
    assert line.startswith("argument --tile: 32 invalid: allowed 0 (no tiling) or an integer 64 or more"), line
    with QueueClient() as q:
        with pytest.raises(ArchivistError, match=r"^tile = 32 invalid: allowed 0 \(no tiling\) or an integer 64 or more"):
            q.submit("restore", {"input": str(clip), "output": str(tmp_path / "o.mkv"), "models": [MODEL],
                                 "tile": 32})
        assert q.list_jobs() == []


# -- advice that names a key: the engine says ``overwrite``, the command line ``--overwrite`` ------

def _image(path):
    import cv2
    import numpy as np

    cv2.imwrite(str(path), np.full((24, 32, 3), 120, np.uint8))
    return path


def test_an_existing_output_names_overwrite_as_flag_or_key(clip, tmp_path, capsys):
    """A restore's output that exists: ``--overwrite`` on the command line (restored now or queued),
    ``overwrite`` in the engine and at a queued job's submit, where the spec's key is ``overwrite``."""
    from engine.ownership import check_absent, place
    from engine.queue import QueueClient

    src = _image(tmp_path / "in.png")
    for output, source in ((tmp_path / "o.png", src), (tmp_path / "o.mkv", clip)):
        output.write_bytes(b"mine")
        for queue in ([], ["--queue"]):
            line = _one_line(capsys, ["restore", str(source), "-o", str(output), "-m", MODEL, "--device", "cpu",
                                      *queue])
            assert line.endswith("exists; choose another path, or --overwrite to replace it "
                                 "(the old file stays until the new one is complete)"), line
        with QueueClient() as q:
            with pytest.raises(Conflict) as caught:
                q.submit("restore", {"input": str(source), "output": str(output), "models": [MODEL]})
            assert q.list_jobs() == []
        said = str(caught.value)
        assert said.endswith("choose another path, or overwrite to replace it (the old file stays until the new "
                             "one is complete)") and "--" not in said, said
        assert output.read_bytes() == b"mine"
    with pytest.raises(Conflict, match=r"or overwrite to replace it \(the old") as caught:
        check_absent(src, False)
    assert "--" not in str(caught.value)
    # The file that appeared while a job ran: refused when the job gives its output its name.
    partial = tmp_path / "partial.png"
    partial.write_bytes(b"new")
    with pytest.raises(Conflict, match=r"appeared while the job ran\); choose another path, or overwrite to "
                                       r"replace it$"):
        place(partial, src, overwrite=False)
    assert partial.read_bytes() == b"new" and src.exists()


# -- devices, precision, backends: advice that names ``device``, ``precision``, ``backend`` -------

@pytest.mark.skipif("__import__('torch').cuda.is_available()", reason="needs a machine without CUDA")
def test_a_missing_cuda_device_names_device_as_flag_or_key(tmp_path, capsys):
    import torch

    from engine.devices import resolve_device, resolve_precision

    src = _image(tmp_path / "in.png")
    line = _one_line(capsys, ["restore", str(src), "-o", str(tmp_path / "o.png"), "-m", MODEL, "--device", "cuda"])
    assert line == "device cuda requested but CUDA is not available here (use --device cpu)"
    with pytest.raises(Conflict, match=r"^device cuda requested but CUDA is not available here \(use device cpu\)$"):
        resolve_device("cuda")
    # No CUDA here: torch says no device of this machine supports bf16.
    with pytest.raises(Conflict, match=r"^cuda does not support bf16: use precision fp16 or fp32$"):
        resolve_precision("bf16", torch.device("cuda"))
    assert not (tmp_path / "o.png").exists()


def test_a_backend_that_cannot_run_here_names_backend_as_flag_or_key(clip, tmp_path, capsys, monkeypatch):
    from engine.inference.backends import check_backend, plan_steps
    from engine.queue import QueueClient

    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # as on a machine without TensorRT
    src = _image(tmp_path / "in.png")
    line = _one_line(capsys, ["restore", str(src), "-o", str(tmp_path / "o.png"), "-m", MODEL, "--backend",
                              "tensorrt"])
    assert line.startswith("backend tensorrt needs the tensorrt") and line.endswith(
        "pip install tensorrt onnx (TensorRT for this machine's CUDA), or use --backend compile"), line
    with pytest.raises(Conflict, match=r"or use backend compile$") as caught:
        check_backend("tensorrt")
    assert "--" not in str(caught.value)
    with QueueClient() as q:
        with pytest.raises(ArchivistError, match=r"or use backend compile$") as caught:
            q.submit("restore", {"input": str(src), "output": str(tmp_path / "o.png"), "models": [MODEL],
                                 "backend": "tensorrt"})
        assert "--" not in str(caught.value) and q.list_jobs() == []
    # TensorRT on the CPU (reached only once TensorRT is installed): the way out names the key.
    with pytest.raises(Conflict, match=r"^backend tensorrt needs a CUDA device: use backend compile or eager on "
                                       r"the CPU$"):
        plan_steps("tensorrt", "cpu")
    assert not (tmp_path / "o.png").exists()


def test_a_chain_that_overflows_in_half_precision_names_precision_as_flag_or_key(tmp_path, capsys):
    """Non-finite output at bf16: the advice is ``--precision fp32`` on the command line, ``precision
    fp32`` through the engine (where a queued job's ``precision`` sets it)."""
    import torch

    from engine.inference.chain import Chain, Stage
    from engine.inference.restore import restore_images
    from engine.models import compact
    from engine.models.files import save_safetensors

    torch.manual_seed(0)
    spec = compact.spec_for(8, 2, 1)
    net = compact.build(spec)
    with torch.no_grad():  # finite weights whose output is not: every conv ×1e15
        for name, p in net.named_parameters():
            if name.endswith(".weight") and p.dim() == 4:
                p.mul_(1e15)
    path = tmp_path / "overflow.safetensors"
    save_safetensors(path, net.state_dict(), spec)
    folder = tmp_path / "frames"
    folder.mkdir()
    _image(folder / "a.png")
    out = tmp_path / "restored"
    line = _one_line(capsys, ["restore", str(folder), "-o", str(out), "-m", str(path), "--device", "cpu",
                              "--precision", "bf16"])
    assert line.startswith("model 'overflow' (stage 1 of the chain) gave non-finite values") and line.endswith(
        "nothing was written for it: its weights overflow in this precision: try --precision fp32"), line
    chain = Chain.load([Stage(str(path))], device="cpu", precision="bf16")
    with pytest.raises(Conflict, match=r"its weights overflow in this precision: try precision fp32$") as caught:
        restore_images(folder, out, chain)
    assert "--" not in str(caught.value)
    assert not out.exists() or list(out.iterdir()) == []


# -- training: ``resume``, ``name``, ``stop_at`` (a train job's keys) ------------------------------

def _train_config(folder, **overrides):
    """A tiny config (nf 8, nc 2, 32 px) over a tiny paired dataset; four iterations by default."""
    import yaml

    from tests.train.trainkit import tiny_config, write_pairs

    write_pairs(folder / "pairs")
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**{"train.total_iters": 4, "train.checkpoint_every": 2,
                                                   "train.val_every": 4, "train.log_every": 2, **overrides})))
    return path


@pytest.fixture
def train_config(tmp_path):
    return _train_config(tmp_path)


def test_training_refusals_name_the_flags_or_the_keys(train_config, capsys):
    import yaml

    from engine.train import run_training

    assert main(["train", str(train_config), "--stop-at", "2", "--device", "cpu"]) == 0
    capsys.readouterr()
    # The run exists: continue it, or another name.
    line = _one_line(capsys, ["train", str(train_config), "--device", "cpu"])
    assert line.startswith("run 'tiny' exists already (") and line.endswith(
        "): continue it with --resume, choose another --name, or archivist runs remove it"), line
    with pytest.raises(Conflict, match=r"\): continue it with resume, choose another name, or archivist runs "
                                       r"remove it$"):
        run_training(train_config, device="cpu")
    # A stop before where the run is.
    line = _one_line(capsys, ["train", "--resume", "--name", "tiny", "--stop-at", "1", "--device", "cpu"])
    assert line == "--stop-at 1 is not after the run's iteration 2"
    with pytest.raises(Conflict, match=r"^stop_at 1 is not after the run's iteration 2$"):
        run_training(None, name="tiny", resume=True, stop_at=1, device="cpu")
    # A resume with a config that changed what may not change.
    doc = yaml.safe_load(train_config.read_text())
    doc["optim"]["g"]["lr"] = 1e-3
    changed = train_config.with_name("changed.yaml")
    changed.write_text(yaml.safe_dump(doc))
    line = _one_line(capsys, ["train", str(changed), "--resume", "--device", "cpu"])
    assert line.startswith("--resume refused: the config differs from run 'tiny' in optim.g.lr;"), line
    with pytest.raises(Conflict, match=r"^resume refused: the config differs from run 'tiny' in optim.g.lr;"):
        run_training(changed, resume=True, device="cpu")


def test_divergence_advice_names_resume_as_flag_or_key(tmp_path, capsys, monkeypatch):
    from engine.train import run_training
    from engine.train import trainer as trainer_mod

    train_config = _train_config(tmp_path, **{"train.total_iters": 8, "train.nan_tolerance": 2})
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", set(range(3, 100)))  # every step from 3 on is NaN
    line = _one_line(capsys, ["train", str(train_config), "--device", "cpu"])
    assert "diverged:" in line and line.endswith("is intact: lower optim.g.lr, use precision fp32 or enable "
                                                 "optim.grad_clip, then --resume"), line
    with pytest.raises(Conflict) as caught:
        run_training(train_config, name="tiny2", device="cpu")
    said = str(caught.value)
    assert "diverged:" in said and said.endswith("optim.grad_clip, then resume") and "--" not in said, said


@pytest.mark.slow
def test_a_queued_train_job_records_the_refusal_by_key(train_config, capsys, monkeypatch):
    """A real daemon and worker run a train job whose stop is before where its run stands: the job's
    error names the spec's key (``stop_at``), as the engine does, never the command line's flag."""
    from engine.queue import QueueClient, Store
    from engine.queue.daemon import start_daemon
    from tests.queue.conftest import _stop_everything, _wait_for, write_config

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the daemon's slots: the CPU only
    write_config(Path(os.environ["ARCHIVIST_HOME"]))
    assert main(["train", str(train_config), "--stop-at", "2", "--device", "cpu"]) == 0
    capsys.readouterr()
    with QueueClient() as q:
        jid = q.submit("train", {"name": "tiny", "resume": True, "stop_at": 1})
    try:
        start_daemon()
        _wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=120, what="the train job to end")
    finally:
        _stop_everything()
    job = Store().get(jid)
    assert job.status == "failed" and job.error.endswith("stop_at 1 is not after the run's iteration 2"), job.error
    assert "--" not in job.error


# -- the model library and profiles: ``name``, ``force``, ``template`` ----------------------------

def test_a_model_name_taken_names_force_and_name_as_flags_or_keys(tiny_compact, tmp_path, capsys):
    from engine.models.library import Library

    path, _ = tiny_compact
    assert main(["models", "import", str(path), "--name", "m"]) == 0
    capsys.readouterr()
    line = _one_line(capsys, ["models", "import", str(path), "--name", "m"])
    assert line == "a model named 'm' exists already; use --force to replace it or --name"
    with pytest.raises(Conflict, match=r"^a model named 'm' exists already; use force to replace it or name$"):
        Library().import_file(path, name="m")
    line = _one_line(capsys, ["models", "import", str(path), "--name", MODEL])
    assert line == f"'{MODEL}' is a built-in model and cannot be replaced; choose another --name"
    with pytest.raises(Conflict, match=rf"^'{MODEL}' is a built-in model and cannot be replaced; choose another "
                                       r"name$"):
        Library().import_file(path, name=MODEL)
    # A rename has neither flag: its words name none.
    assert main(["models", "import", str(path), "--name", "n"]) == 0
    capsys.readouterr()
    line = _one_line(capsys, ["models", "rename", "n", "m"])
    assert line == "a model named 'm' exists already; choose another name, or remove it first"


def test_a_fetch_over_a_library_model_names_force_as_flag_or_key(tiny_compact, capsys):
    from engine.models.catalog import load_catalog
    from engine.models.fetch import fetch

    path, _ = tiny_compact
    name = load_catalog()[0].name
    assert main(["models", "import", str(path), "--name", name]) == 0
    capsys.readouterr()
    line = _one_line(capsys, ["models", "fetch", name])  # refused before anything is downloaded
    assert line == f"a model named '{name}' is in the library already; use --force to download and replace it"
    with pytest.raises(Conflict, match=rf"^a model named '{name}' is in the library already; use force to "
                                       r"download and replace it$"):
        fetch(name)


def test_a_new_profile_from_a_mix_names_from_or_template(capsys):
    from engine.degrade.library import new_profile

    line = _one_line(capsys, ["profiles", "new", "mine", "--from", "default"])
    assert line == "'default' is a mix; --from takes a profile"
    with pytest.raises(Conflict, match=r"^'default' is a mix; template takes a profile$"):
        new_profile("mine", "default")


def test_a_job_another_waits_on_is_kept_in_words_both_faces_share(tmp_path, capsys):
    from engine.queue import QueueClient

    src = _image(tmp_path / "in.png")
    spec = {"input": str(src), "models": [MODEL]}
    with QueueClient() as q:
        first = q.submit("restore", {**spec, "output": str(tmp_path / "a.png")})
        second = q.submit("restore", {**spec, "output": str(tmp_path / "b.png")}, after=first)
        with pytest.raises(ArchivistError) as caught:
            q.remove(first)
    said = f"job #{first} cannot be removed: job #{second} waits on it (it runs after it)"
    assert str(caught.value) == said
    assert _one_line(capsys, ["queue", "remove", str(first)]) == said


def test_a_queued_backend_that_cannot_run_here_names_the_flag_on_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # as on a machine without TensorRT
    src = _image(tmp_path / "in.png")
    line = _one_line(capsys, ["restore", str(src), "-o", str(tmp_path / "o.png"), "-m", MODEL, "--backend",
                              "tensorrt", "--queue"])
    assert line.endswith("or use --backend compile"), line
