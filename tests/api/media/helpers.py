"""Builders of the media tests: image files."""

from __future__ import annotations

import io

from PIL import Image


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, "PNG")
    return buf.getvalue()
