"""A terminal played by the test: a pty whose far end answers the queries a kitty or a sixel
terminal answers, records everything the program writes, and decodes the pictures in it.

Only the standard library's ``pty`` and Pillow: no real terminal. The program under test sees a
TTY of a fixed size in cells and pixels (``TIOCSWINSZ``), as a terminal emulator reports it.
"""

from __future__ import annotations

import base64
import fcntl
import io
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field

APC_GRAPHICS = re.compile(rb"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
DCS_SIXEL = re.compile(rb"\x1bP([0-9;]*)q(.*?)\x1b\\", re.S)


@dataclass
class FakeTerminal:
    """``kind`` is ``kitty`` (graphics protocol, no sixel) or ``sixel`` (DA1 lists 4, no kitty graphics)."""

    kind: str
    cols: int = 120
    rows: int = 40
    cell: tuple[int, int] = (10, 20)  # pixels per cell (width, height)
    output: bytearray = field(default_factory=bytearray)
    answered: list[str] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        size = struct.pack("HHHH", self.rows, self.cols, self.cols * self.cell[0], self.rows * self.cell[1])
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        self.master = master
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self._scanned = 0

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def pump(self, timeout: float = 0.05) -> None:
        """Read what the program wrote and answer its queries, as a terminal does at once."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the program has closed its side
            return
        self.output += chunk
        self._answer()

    def _answer(self) -> None:
        data = bytes(self.output[self._scanned:])
        # Only complete sequences: keep a possibly cut one for the next read.
        cut = data.rfind(b"\x1b")
        end = len(data) if cut < 0 or data.find(b"\x1b\\", cut) >= 0 or b"c" in data[cut:cut + 4] else cut
        for m in APC_GRAPHICS.finditer(data[:end]):
            keys = dict(kv.split(b"=", 1) for kv in m.group(1).split(b",") if b"=" in kv)
            if keys.get(b"a") == b"q" and self.kind == "kitty":
                self._reply(f"\x1b_Gi={keys[b'i'].decode()};OK\x1b\\")
        for _ in re.finditer(rb"\x1b\[0?c", data[:end]):  # primary device attributes
            self._reply("\x1b[?62;4;22c" if self.kind == "sixel" else "\x1b[?62;22c")
        for _ in re.finditer(rb"\x1b\[16t", data[:end]):  # cell size in pixels
            self._reply(f"\x1b[6;{self.cell[1]};{self.cell[0]}t")
        self._scanned += end

    def _reply(self, text: str) -> None:
        self.answered.append(text)
        os.write(self.master, text.encode())

    def run_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if condition():
                return
            if self.proc.poll() is not None:
                self.pump(0)
                if condition():
                    return
                raise AssertionError(f"the program exited ({self.proc.returncode}) before {what}:\n"
                                     f"{bytes(self.output[-3000:])!r}")
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{bytes(self.output[-3000:])!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


# -- the kitty graphics protocol ---------------------------------------------------------------
@dataclass
class KittyImage:
    image_id: int
    png: bytes
    columns: int | None = None  # from the placement (a=p, c=…, r=…)
    rows: int | None = None


def kitty_images(output: bytes) -> dict[int, KittyImage]:
    """The images transmitted (``f=100`` PNG, chunked with ``m=1``) and their placements."""
    images: dict[int, KittyImage] = {}
    chunks: dict[int, list[bytes]] = {}
    current = None
    for m in APC_GRAPHICS.finditer(output):
        keys = {k.decode(): v.decode() for k, v in (kv.split(b"=", 1) for kv in m.group(1).split(b",") if b"=" in kv)}
        payload = m.group(2) or b""
        action = keys.get("a", "t")
        if action in ("t", "T") and ("i" in keys or current is not None):
            image_id = int(keys["i"]) if "i" in keys else current
            if "f" in keys and keys["f"] != "100":
                raise AssertionError(f"image {image_id}: format f={keys['f']}, expected PNG (f=100)")
            chunks.setdefault(image_id, []).append(payload)
            current = image_id if keys.get("m") == "1" else None
            if keys.get("m", "0") == "0":
                images[image_id] = KittyImage(image_id, base64.b64decode(b"".join(chunks.pop(image_id))))
        elif action == "p":
            image = images[int(keys["i"])]
            image.columns, image.rows = int(keys["c"]), int(keys["r"])
    return images


# -- sixel -------------------------------------------------------------------------------------
@dataclass
class SixelImage:
    raster: tuple[int, int] | None  # the raster attributes' width and height ("Pan;Pad;Ph;Pv)
    width: int  # the extent the pixel data really covers
    height: int
    pixels: dict[tuple[int, int], tuple[int, int, int]]


def sixel_images(output: bytes) -> list[SixelImage]:
    """Every sixel picture in ``output``, decoded (colour registers, repeats, bands)."""
    return [decode_sixel(m.group(2)) for m in DCS_SIXEL.finditer(output)]


def decode_sixel(body: bytes) -> SixelImage:
    raster = None
    m = re.match(rb'"(\d+);(\d+);(\d+);(\d+)', body)
    if m:
        raster = (int(m.group(3)), int(m.group(4)))
        body = body[m.end():]
    palette: dict[int, tuple[int, int, int]] = {}
    pixels: dict[tuple[int, int], tuple[int, int, int]] = {}
    colour = 0
    x = band = width = 0
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == ord("#"):
            m = re.match(rb"#(\d+)(?:;(\d+);(\d+);(\d+);(\d+))?", body[i:])
            colour = int(m.group(1))
            if m.group(2):
                if m.group(2) != b"2":
                    raise AssertionError(f"colour system {m.group(2)!r}: only RGB (2) expected")
                palette[colour] = tuple(round(int(m.group(k)) * 255 / 100) for k in (3, 4, 5))
            i += m.end()
            continue
        if ch == ord("!"):
            m = re.match(rb"!(\d+)([\x3f-\x7e])", body[i:])
            count, bits = int(m.group(1)), m.group(2)[0] - 0x3F
            for _ in range(count):
                _put(pixels, x, band, bits, palette.get(colour, (0, 0, 0)))
                x += 1
            width = max(width, x)
            i += m.end()
            continue
        if ch == ord("$"):
            x = 0
        elif ch == ord("-"):
            x, band = 0, band + 1
        elif 0x3F <= ch <= 0x7E:
            _put(pixels, x, band, ch - 0x3F, palette.get(colour, (0, 0, 0)))
            x += 1
            width = max(width, x)
        i += 1
    height = max((y for _, y in pixels), default=-1) + 1
    return SixelImage(raster, width, height, pixels)


def _put(pixels, x: int, band: int, bits: int, rgb) -> None:
    for k in range(6):
        if bits >> k & 1:
            pixels[(x, band * 6 + k)] = rgb


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size
