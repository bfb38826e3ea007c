"""A minimal AVI (RIFF) writer for Motion-JPEG frames already encoded, with an idx1 index.

Why not ``cv2.VideoWriter``: its FFMPEG MJPEG encoder runs at about 590 frames/s on a 640 x 240 frame where
``cv2.imencode`` (libjpeg-turbo) does 2,300; a day of door clips is ~25,000 frames. At JPEG quality 75 the mean
error (2.2 grey levels) matches the camera simulator's FFMPEG clips (2.3). FFMPEG and OpenCV read the files back
with the exact frame count and rate.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

AVIF_HASINDEX = 0x10
AVIIF_KEYFRAME = 0x10


def _chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", 4 + len(body)) + kind + body


def write_mjpeg_avi(path: Path, jpegs: Sequence[bytes], size: tuple[int, int], fps: float) -> int:
    """Write the JPEG frames as an MJPG AVI at ``fps``; returns the file size in bytes."""
    width, height = size
    rate = Fraction(fps).limit_denominator(1001)
    biggest = max((len(j) for j in jpegs), default=0)
    avih = struct.pack("<14I", round(1e6 / fps), round(biggest * fps), 0, AVIF_HASINDEX, len(jpegs), 0, 1,
                       biggest, width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIIIhhhh", b"vids", b"MJPG", 0, 0, 0, 0, rate.denominator, rate.numerator, 0,
                       len(jpegs), biggest, 0xFFFFFFFF, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    header = _list(b"hdrl", _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
    movi = bytearray()
    index = bytearray()
    for jpeg in jpegs:
        index += b"00dc" + struct.pack("<III", AVIIF_KEYFRAME, 4 + len(movi), len(jpeg))
        movi += _chunk(b"00dc", jpeg)
    body = header + _list(b"movi", bytes(movi)) + _chunk(b"idx1", bytes(index))
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"AVI " + body
    path.write_bytes(data)
    return len(data)
