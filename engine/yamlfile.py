"""Reading the YAML documents a user writes (training configs, profiles and mixes, the daemon's config).

One reader, so every file fails the same way: one line naming the file, the line and the problem.
It refuses what plain YAML loading lets through silently: a key given twice in one mapping, where
the second value would quietly replace the first (``crf: 16`` under ``crf: 20`` and the encode
uses one of them without a word).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.errors import ArchivistError


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key that a mapping gives twice.

    Only the mapping's own keys count: a key that overrides one brought in by a merge (``<<: *base``)
    is how YAML means merges to be used.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says what is wrong with it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"key {key!r} is given twice in one mapping (lines {first + 1} and "
                        f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str | Path) -> object:
    """The document in ``text``; any failure is one :class:`ArchivistError` naming ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ArchivistError(f"{source}: not valid YAML{where}: {problem}") from None


def read_yaml(path: str | Path, what: str = "YAML") -> object:
    """Read and parse a UTF-8 YAML file; a file that cannot be read, or is not UTF-8 text, is one line too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a Latin-1 file, or no text at all
        raise ArchivistError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                             f"{what} files are UTF-8 YAML") from None
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, path)
