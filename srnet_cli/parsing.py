"""JSON and TOML parsing that turns Python's recursion limit into a plain ValueError.

A file nested thousands of levels deep (`[[[[...`) makes `json.loads` and `tomllib.loads` raise RecursionError;
callers catch `ValueError` (as for any malformed file) and name the file in their own error.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any


class NestingError(ValueError):
    """A document nested more deeply than the parser's recursion limit."""


def json_loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise NestingError("nested too deeply (over ~1,000 levels) to be parsed") from None


def toml_loads(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise NestingError("nested too deeply (over ~1,000 levels) to be parsed") from None
