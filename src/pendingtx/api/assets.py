"""Files shipped inside a Python package and served as they are: Swagger UI's for /docs, the
dashboard's CSS and script for /ui. Only the files named are served, each read once."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response

from pendingtx import errors


class PackagedFiles:
    """The files `names` of the folder `folder()` (found on first use), at a `{name}` route."""

    def __init__(self, folder: Callable[[], Traversable], names: frozenset[str], cache_control: str) -> None:
        self._folder = folder
        self._names = names
        self._headers = {"Cache-Control": cache_control}
        self._loaded: dict[str, bytes] = {}

    async def serve(self, request: Request) -> Response:
        """One of the files; 404 for any other name."""
        name = request.path_params["name"]
        if name not in self._names:
            raise errors.NotFound(f"No asset {name!r}")
        if name not in self._loaded:
            self._loaded[name] = (self._folder() / name).read_bytes()
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(self._loaded[name], media_type=media_type, headers=self._headers)
