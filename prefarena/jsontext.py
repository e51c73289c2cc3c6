"""Parsing JSON from outside (a file's line, a server's answer, a request body) with one error.

`json.loads` raises `JSONDecodeError` on bad text but `RecursionError` on text that is only
nested too deeply (a few KB of "[[[[..."), which escaped every `except JSONDecodeError` as a
500 or a traceback. `loads` turns both into `JSONTextError`, a ValueError with a short `msg`.
"""

from __future__ import annotations

import json
from typing import Any


class JSONTextError(ValueError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg) from exc
    except RecursionError as exc:
        raise JSONTextError("nested too deeply") from exc
