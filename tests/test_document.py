"""engine.document: one way to declare a document, and the one way ranges are described."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from engine import document
from engine.document import (
    InvalidValue,
    UnknownKey,
    boolean,
    choice,
    describe_range,
    integer,
    number,
    section,
    text,
    value,
)

ROOT = Path(__file__).resolve().parents[1]


def _pair(v):
    if not isinstance(v, list) or len(v) != 2:
        raise ValueError
    return v


@dataclass
class Inner:
    depth: int = integer(3, 1, 10, "how deep")


@dataclass
class Doc:
    size: int = integer(8, 1, 100, "a size", unit="pixels")
    rate: float = number(0.5, 0, 1, "a rate", lo_open=True)
    mode: str = choice("a", ("a", "b"), "a mode")
    on: bool = boolean(True, "a switch | with a bar")
    label: str | None = text(None, "a label", optional=True)
    pair: list = value([1, 2], "two things", allowed="a list of two", convert=_pair)
    inner: Inner = section(Inner)
    note: str = field(default="", repr=False)  # not a key


@pytest.mark.parametrize("lo,hi,kw,words", [
    (1, 100, {"integer": True}, "an integer 1 to 100"),
    (0, 1, {"lo_open": True}, "a number > 0 and <= 1"),
    (0, 1, {"hi_open": True}, "a number >= 0 and < 1"),
    (0, None, {"integer": True}, "an integer 0 or more"),
    (0, None, {"lo_open": True}, "a number > 0"),
    (None, 5, {}, "a number 5 or less"),
    (0.01, 60, {"unit": "seconds"}, "a number 0.01 to 60 (seconds)"),
    (None, None, {}, "a number"),
])
def test_describe_range(lo, hi, kw, words):
    assert describe_range(lo, hi, **kw) == words


def test_build_checks_each_key_and_names_file_key_value_and_range():
    doc = document.build(Doc, {"size": 4, "rate": 1, "inner": {"depth": 2}}, note="n")
    assert (doc.size, doc.rate, doc.inner.depth, doc.note, doc.pair) == (4, 1.0, 2, "n", [1, 2])
    assert isinstance(doc.rate, float)
    for given, line in [
        ({"size": 0}, "f.yaml: size = 0 invalid: allowed an integer 1 to 100 (pixels)"),
        ({"size": 2.5}, "f.yaml: size = 2.5 invalid: allowed an integer 1 to 100 (pixels)"),
        ({"size": True}, "f.yaml: size = True invalid: allowed an integer 1 to 100 (pixels)"),
        ({"rate": 0}, "f.yaml: rate = 0 invalid: allowed a number > 0 and <= 1"),
        ({"rate": math.nan}, "f.yaml: rate = nan invalid: allowed a number > 0 and <= 1, finite (not NaN or infinity)"),
        ({"mode": "c"}, "f.yaml: mode = 'c' invalid: allowed one of a, b"),
        ({"on": "yes"}, "f.yaml: on = 'yes' invalid: allowed true or false"),
        ({"label": 3}, "f.yaml: label = 3 invalid: allowed null or text"),
        ({"pair": [1]}, "f.yaml: pair = [1] invalid: allowed a list of two"),
        ({"inner": {"depth": 11}}, "f.yaml: inner.depth = 11 invalid: allowed an integer 1 to 10"),
        ({"inner": 5}, "f.yaml: inner = 5 invalid: allowed a mapping"),
    ]:
        with pytest.raises(InvalidValue) as refused:
            document.build(Doc, given, source="f.yaml")
        assert str(refused.value) == line
    with pytest.raises(UnknownKey, match=r"^f.yaml: unknown key 'inner.deep': allowed keys are depth$"):
        document.build(Doc, {"inner": {"deep": 1}}, source="f.yaml")
    with pytest.raises(UnknownKey, match="allowed keys are size, rate, mode, on, label, pair, inner$"):
        document.build(Doc, {"note": "x"})


def test_a_refusal_shows_the_flag_that_set_the_key():
    refused = InvalidValue("size", 0, describe_range(1, 100, integer=True))
    assert refused.line("--size") == "--size 0 invalid: allowed an integer 1 to 100"


def test_check_a_document_made_in_code():
    doc = Doc()
    doc.inner.depth = 0
    with pytest.raises(InvalidValue, match=r"^inner.depth = 0 invalid"):
        document.check(doc)
    doc = Doc(rate=1)
    assert document.check(doc).rate == 1.0 and isinstance(doc.rate, float)


def test_reference_and_its_table():
    rows = document.reference(Doc)
    assert [r[0] for r in rows] == ["size", "rate", "mode", "on", "label", "pair", "inner.depth"]
    assert rows[0] == ("size", "an integer 1 to 100 (pixels)", 8, "a size")
    table = document.reference_table(Doc)
    assert "| `on` | `true` | true or false | a switch \\| with a bar |" in table
    assert "| `label` | `null` | null or text | a label |" in table
    assert "| `pair` | `[1, 2]` | a list of two | two things |" in table
    page = f"# x\n\n<!-- keys of {__name__}.Doc: generated, do not edit by hand -->\n| old |\n<!-- end of keys -->\nafter\n"
    fresh = document.refresh_page(page)
    assert table in fresh and "| old |" not in fresh and fresh.endswith("<!-- end of keys -->\nafter\n")
    assert document.refresh_page(fresh) == fresh


@pytest.mark.parametrize("value", [1.0, 1e-07, 0.0001, None, True, [0.9, 0.99], {"conv1_2": 0.1}])
def test_a_default_is_shown_as_yaml_that_reads_back_the_same(value):
    assert yaml.safe_load(document.show_default(value)) == value


def test_one_range_format_across_profiles_training_and_queue(tmp_path, monkeypatch):
    """Ranges were written three ways ('0 <= low <= high <= 60', 'an integer >= 1 and <= 1024',
    'an integer 1 to 100'); every document now describes them in describe_range's words."""
    from engine.degrade.schema import validate_profile
    from engine.errors import ArchivistError
    from engine.queue.config import load_config
    from engine.train.config import config_from_dict

    with pytest.raises(ArchivistError) as profile:
        validate_profile({"name": "x", "effects": {"grain": {"strength": [1, 99]}}}, "p.yaml")
    with pytest.raises(ArchivistError) as train:
        config_from_dict({"network": {"num_feat": 0}}, "t.yaml")
    (tmp_path / "config.yaml").write_text("queue:\n  max_attempts: 0\n")
    with pytest.raises(ArchivistError) as queue:
        load_config(tmp_path / "config.yaml", detect_gpus=False)
    assert "allowed: a number 0 to 60, or [low, high] within it" in str(profile.value)
    assert "allowed an integer 1 to 1024" in str(train.value)
    assert "allowed an integer 1 to 100" in str(queue.value)
    for page in ("profiles.md", "training.md", "daemon.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert " … " not in text and "<= low" not in text, page


def test_list_of_checks_count_items_and_repeats():
    index = document.Key("integer", "", 0, None)
    convert = document.list_of(index, count=2, unique=True)
    assert convert([0, 3]) == [0, 3]
    for bad in ([0], [0, 0], [0, -1], [0, True], "0, 1", None):
        with pytest.raises(ValueError):
            convert(bad)
    words = document.list_words(index, "GPU indices", count=2, unique=True)
    assert words == "a list of 2 GPU indices, each an integer 0 or more, none twice"
