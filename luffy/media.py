"""``/media/``: files under ``LUFFY_MEDIA_ROOT``, and nothing else.

Litestar's static files router keeps a request inside the root by path arithmetic, but follows
symbolic links (a link planted in the media root would serve ``/etc/passwd`` or the secret key),
lets a NUL byte reach ``stat`` (a 500), and answers a miss with English text that echoes the path.
Here a path with a NUL byte or any symbolic link on its way is simply not found, and every miss
is the contract's 404 envelope.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from anyio import open_file
from litestar import MediaType, Request, Response, Router
from litestar.exceptions import NotFoundException
from litestar.file_system import BaseLocalFileSystem, FileSystemAdapter
from litestar.static_files import create_static_files_router
from litestar.types import FileInfo, PathType

from luffy.responses import CLIENT_ERROR, DEFAULT_ERROR_MESSAGES, ErrorReply


class NoLinksFileSystem(BaseLocalFileSystem):
    """Regular files and directories under ``root``, reached without following any symbolic link."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _lstat(self, path: str) -> os.stat_result:
        if "\x00" in path:
            raise FileNotFoundError(path)
        relative = Path(os.path.normpath(path)).relative_to(self.root)  # ValueError outside the root
        current = self.root
        result = os.lstat(current)
        for part in relative.parts:
            current = current / part
            result = os.lstat(current)
            if stat.S_ISLNK(result.st_mode):
                raise FileNotFoundError(path)
        return result

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        try:
            result = self._lstat(str(path))
        except ValueError:
            raise FileNotFoundError(path) from None
        return await FileSystemAdapter.parse_stat_result(path=path, result=result)

    async def open(self, file: PathType, mode: str, buffering: int = -1) -> Any:
        # O_NOFOLLOW: a link swapped in after ``info`` is refused by the kernel. Media is only ever read,
        # as bytes, whatever mode the caller names.
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
        return await open_file(descriptor, mode="rb", buffering=buffering)


def media_not_found(_: Request[Any, Any, Any], __: NotFoundException) -> Response[ErrorReply]:
    return Response(
        ErrorReply(code=CLIENT_ERROR, msg=DEFAULT_ERROR_MESSAGES[404]), status_code=404, media_type=MediaType.JSON
    )


def media_router(prefix: str, root: Path) -> Router:
    root = root.resolve()
    return create_static_files_router(
        path=prefix.rstrip("/"),
        directories=[root],
        file_system=NoLinksFileSystem(root),
        include_in_schema=False,
        name="media",
        exception_handlers={NotFoundException: media_not_found},
    )
