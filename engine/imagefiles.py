"""Image files by any name a POSIX file system allows.

OpenCV's ``imread``/``imwrite`` take the file name as UTF-8 and bring the whole process down (a
segmentation fault, no exception) on a name that is not: bytes such as ``\\xff`` reach Python as
surrogate escapes, which have no UTF-8 form. So images are encoded and decoded in memory and the
file is opened by Python, which hands the kernel the name's exact bytes.
"""

from __future__ import annotations

import os

import cv2
import numpy as np


def write_image(path: str | os.PathLike, image: np.ndarray, suffix: str | None = None) -> bool:
    """Write ``image`` (BGR or gray, as ``cv2.imwrite`` takes it) in the format of ``path``'s suffix,
    or of ``suffix`` (``".png"``) where the name says nothing (a temporary name of an atomic write).

    Returns False where OpenCV cannot encode it (as ``cv2.imwrite`` does); raises OSError where the
    file cannot be written.
    """
    suffix = suffix or os.path.splitext(os.fspath(path))[1] or ".png"
    ok, buf = cv2.imencode(suffix, image)
    if not ok:
        return False
    with open(path, "wb") as f:
        f.write(buf.tobytes())
    return True


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """The image at ``path`` as ``cv2.imread(path, flags)`` gives it; None where it cannot be read."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, flags) if data.size else None
