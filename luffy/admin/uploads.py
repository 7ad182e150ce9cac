"""Image uploads from the admin's forms: checked by content (not by the name the browser sent), stored
under the media root with a generated name, so no upload can choose its path or pose as another type.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from starlette.datastructures import UploadFile

from luffy.errors import InvalidInput

MAX_IMAGE_BYTES = 2 * 1024 * 1024

# The first bytes of each accepted image format, and the extension a file of it is given.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def is_upload(value: object) -> bool:
    return isinstance(value, UploadFile)


def image_extension(head: bytes) -> str | None:
    for signature, extension in _SIGNATURES:
        if head.startswith(signature):
            return extension
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


async def save_image(upload: UploadFile, media_root: Path, folder: str) -> str:
    """Store ``upload`` as ``folder/<random>.<ext>`` under ``media_root``; returns that media path."""
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"图片不能超过 {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    extension = image_extension(data[:16])
    if extension is None:
        raise InvalidInput("只接受 PNG、JPEG、GIF 或 WebP 图片")
    relative = f"{folder}/{secrets.token_hex(16)}.{extension}"
    target = media_root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return relative
