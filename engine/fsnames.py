"""File names in text documents: any name a POSIX file system allows, stored and read back exactly.

A file name is bytes. Python hands it over as ``str`` decoded with the locale's encoding, bytes that
do not decode becoming lone surrogates (``surrogateescape``: byte ``\\xff`` reads ``'\\udcff'``).
Such a string cannot go into SQLite or strict JSON as it is, and the same bytes read as a different
string under another locale (a job queued from a UTF-8 shell, run by a daemon in the C locale).

So the job store keeps names *as bytes*, in text:

- a name whose bytes are valid UTF-8 is stored as that UTF-8 text (what every tool shows);
- any other name is stored as ``{"$fsbytes": "/films/reel%FF.mkv"}`` in a JSON document, its bytes
  percent-encoded (reversible: ``%`` itself is written ``%25``), and as a BLOB in an SQLite column;
- reading turns the bytes back into this process's ``str`` for them (``os.fsdecode``), so opening
  the file reaches the same bytes on disk whatever the locale of the writer and the reader.

Messages meant for people (errors, events) are not names: :func:`readable` escapes what UTF-8
cannot hold (``\\xff``) instead.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from engine.errors import ArchivistError

BYTES_TAG = "$fsbytes"
# Percent-encoding leaves these as they are, so the stored form of a path stays legible.
_SAFE = "/-_.~+,=@:"


def name_bytes(text: str) -> bytes:
    """The bytes a string stands for as a file name in this process (its locale's encoding).

    A string no file name in this locale can give (``é`` under the C locale, typed rather than read
    from disk) is taken as UTF-8, as the rest of the system would write it.
    """
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ArchivistError(f"{readable(text)}: holds a character no file name can hold (a lone "
                             "UTF-16 surrogate)") from None


def to_document(value: Any) -> Any:
    """``value`` (a job spec) with every string made storable: UTF-8 text, or the tagged bytes form."""
    if isinstance(value, str):
        raw = name_bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {BYTES_TAG: quote_from_bytes(raw, safe=_SAFE)}
    if isinstance(value, dict):
        if BYTES_TAG in value:
            raise ArchivistError(f"key {BYTES_TAG!r} is reserved for file names in job documents")
        return {k: to_document(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_document(v) for v in value]
    return value


def from_document(value: Any) -> Any:
    """The inverse of :func:`to_document`, giving this process's strings for the stored bytes."""
    if isinstance(value, str):
        return _native(value)
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_TAG), str):
            return os.fsdecode(unquote_to_bytes(value[BYTES_TAG]))
        return {k: from_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_document(v) for v in value]
    return value


def to_column(path: str | None) -> str | bytes | None:
    """A path for an SQLite column: UTF-8 text when its bytes are UTF-8, else the bytes (a BLOB)."""
    if path is None:
        return None
    raw = name_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def from_column(value: str | bytes | None) -> str | None:
    """The inverse of :func:`to_column`."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return _native(value)


def _native(text: str) -> str:
    """Stored UTF-8 text as this process's string for the same bytes (itself, in a UTF-8 locale).

    Surrogate escapes in it (a spec stored before names were kept as bytes) stand for their bytes.
    """
    if text.isascii():
        return text
    try:
        return os.fsdecode(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate that escapes no byte: nothing to map it to
        return text


def readable(text: str) -> str:
    """``text`` as UTF-8 can hold it: bytes that were not UTF-8 (surrogate escapes) become ``\\xff``.

    For messages (errors, events), which people read and nothing opens. A run of escaped bytes that
    is UTF-8 after all (a name from a C-locale process) reads as the characters it encodes.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    run = bytearray()
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            run.append(ord(ch) - 0xDC00)
            continue
        if run:
            out.append(run.decode("utf-8", "backslashreplace"))
            run.clear()
        if "\ud800" <= ch <= "\udfff":  # any other lone surrogate
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    if run:
        out.append(run.decode("utf-8", "backslashreplace"))
    return "".join(out)
