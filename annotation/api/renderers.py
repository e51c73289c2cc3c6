"""Renderers that let content negotiation accept what a file endpoint answers with.

The export endpoints answer with the file itself (a FileResponse, a stream of JSON lines),
which no renderer touches; but DRF picks a renderer from the Accept header first, and a client
asking for the media type the schema documents (`application/x-ndjson`,
`application/octet-stream`) got 406 where no renderer claimed it. These claim it; an error
then still reads as JSON.
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer


class _FileRenderer(BaseRenderer):
    format = "file"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        # Only an error reaches a renderer here (the file is an HttpResponse already): JSON,
        # and labelled so (the header was set to this renderer's type before rendering).
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data, "application/json", renderer_context)


class JSONLinesRenderer(_FileRenderer):
    media_type = "application/x-ndjson"


class BinaryRenderer(_FileRenderer):
    media_type = "application/octet-stream"
