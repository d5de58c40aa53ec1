"""The training-frame writer: reproducible from its seed, resumable, complete files only."""

import cv2
import numpy as np

from engine.synth import EVALUATION_SEEDS, photo_frame
from engine.synth.cel import cel_frame
from engine.synth.frames import main, write_frames


def test_frames_are_the_seeded_cel_frames_and_a_rerun_keeps_them(tmp_path):
    paths = write_frames(tmp_path / "f", count=3, size=64, seed=40)
    assert [p.name for p in paths] == ["cel_00000.png", "cel_00001.png", "cel_00002.png"]
    first = cv2.imread(str(paths[0]))[:, :, ::-1]
    assert first.shape == (64, 64, 3)
    t = float(np.random.default_rng([40, 0x7]).uniform(0.0, 8.0))
    np.testing.assert_array_equal(first, cel_frame(40, 64, 64, t))
    stamp = paths[1].stat().st_mtime_ns
    paths[2].unlink()  # an interrupted run: the rerun writes only what is missing
    again = write_frames(tmp_path / "f", count=3, size=64, seed=40)
    assert again[1].stat().st_mtime_ns == stamp and again[2].exists()
    assert not list((tmp_path / "f").glob(".*part*"))


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "f"), "--count", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error:") and "count" in err[0]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([str(blocker / "frames"), "--count", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker / "frames") in err[0] and "cannot write frames" in err[0]


# sha256 of cel_frame(seed, size, size, t) pixels (t drawn from [seed, 0x7]) from main's generator
# before photographic frames were added (0f60326): `--kind cel` must keep writing these frames.
CEL_HASHES = {
    (8000, 384): "b85e4f4a80675cb353ec2bff504e320dc0420ac90fa6b2fd323e60ed5affa494",
    (8001, 96): "c94b9e31bdbfc612e51d4c35892719e95cfa82fdac5c2046690b8ad862ef5529",
    (8599, 128): "639844c2be70751aaf309fd24d140c3364ed7a92528723c41d92493718368a71",
    (900000, 384): "780b65ad23f119a497668ab98f54e781f326863f08bc4cad759a2e8ffc4fbaa4",
}


def test_the_default_kind_writes_v1s_cel_frames_byte_for_byte(tmp_path):
    import hashlib

    for (seed, size), digest in CEL_HASHES.items():
        if seed in EVALUATION_SEEDS:  # the evaluation's frames come from the same generator
            from engine.evaluate import procedural_images

            (rgb,) = procedural_images(1, size, seed)
        else:
            (path,) = write_frames(tmp_path / str(seed), count=1, size=size, seed=seed)
            assert path.name == "cel_00000.png"
            rgb = cv2.imread(str(path))[:, :, ::-1]
        assert hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest() == digest, (seed, size)


def test_photo_and_mixed_folders_name_each_frame_by_its_kind(tmp_path):
    photos = write_frames(tmp_path / "p", count=2, size=64, seed=500, kind="photo")
    assert [p.name for p in photos] == ["photo_00000.png", "photo_00001.png"]
    np.testing.assert_array_equal(cv2.imread(str(photos[1]))[:, :, ::-1], photo_frame(501, 64, 64))
    mixed = write_frames(tmp_path / "m", count=40, size=48, seed=7000, kind="mixed")
    assert [p.name[:12] for p in mixed[:2]] == ["mixed_00000_", "mixed_00001_"]
    kinds = [p.stem.split("_")[2] for p in mixed]
    assert set(kinds) == {"cel", "photo", "bwcel", "bwphoto"}
    for path, kind in zip(mixed, kinds):
        rgb = cv2.imread(str(path))
        gray = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        assert gray == kind.startswith("bw"), path.name
    assert write_frames(tmp_path / "m", count=40, size=48, seed=7000, kind="mixed") == mixed  # resumable


def test_evaluation_seeds_and_unknown_kinds_are_refused_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "f"), "--count", "10", "--seed", str(EVALUATION_SEEDS.start - 5)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evaluation" in err[0] and "--seed" in err[0]
    assert main([str(tmp_path / "f"), "--kind", "watercolour"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "watercolour" in err[0] and "cel, photo, mixed" in err[0]
    assert not (tmp_path / "f").exists()  # refused before anything was written
