"""Fetch one file over HTTP(S) into place: stream it to a temporary name in the destination's folder while hashing,
check its length, size and SHA-256, then `os.replace` it, so a destination is either absent or whole.

Only the standard library's urllib: its default opener honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from srnet_cli.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 60.0
MIRROR_ENV = "SRNET_DATA_MIRROR"


@dataclass(frozen=True)
class Got:
    sha256: str
    size: int


class FetchError(DataError):
    """A download that did not arrive whole (no network, proxy, HTTP error, truncation) or not as pinned."""


def mirrored(url: str, mirror: str | None) -> str:
    """`https://host/path?q` -> `MIRROR/host/path?q`: a mirror (or the tests' loopback server) holds each file under
    its original host and path."""
    if not mirror:
        return url
    parts = urlsplit(url)
    rest = f"{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return f"{mirror.rstrip('/')}/{rest}"


def temp_name(dest: Path) -> Path:
    """One fixed name per destination: a part left by a killed run is truncated by the next one, never kept."""
    return dest.with_name(f".{dest.name}.part")


def hash_file(path: Path) -> Got:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Got(digest.hexdigest(), size)


def check_pin(got: Got, size: int | None, sha256: str | None, what: str, hint: str) -> None:
    if sha256 is not None and got.sha256 != sha256:
        raise FetchError(
            f"{what} has sha256 {got.sha256} (size {got.size}), expected sha256 {sha256} (size {size})", hint
        )
    if size is not None and got.size != size:
        raise FetchError(f"{what} has size {got.size}, expected {size} (sha256 {got.sha256})", hint)


def download(
    url: str,
    dest: Path,
    size: int | None,
    sha256: str | None,
    hint: str,
    origin: str | None = None,
    timeout: float = TIMEOUT_S,
) -> Got:
    """Download `url` (a copy of `origin`, when a mirror serves it) to `dest` through a temporary file; any failure
    removes the temporary file and raises FetchError naming the source and the file."""
    part = temp_name(dest)
    what = f"{dest.name} from {origin or url}" + (f" (via {url})" if origin and origin != url else "")
    try:
        got = _stream(url, part, what, hint, timeout)
        check_pin(got, size, sha256, what, hint)
        os.replace(part, dest)
        return got
    finally:
        part.unlink(missing_ok=True)


def copy_verified(src: Path, dest: Path, size: int | None, sha256: str | None, hint: str) -> Got:
    """A file the user already has (`--source-dir`): checked before it is copied into place the same way."""
    got = hash_file(src)
    check_pin(got, size, sha256, str(src), hint)
    part = temp_name(dest)
    try:
        shutil.copyfile(src, part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return got


def _stream(url: str, part: Path, what: str, hint: str, timeout: float) -> Got:
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "srnet-data-fetch"})
        with urllib.request.urlopen(request, timeout=timeout) as response, part.open("wb") as out:
            length = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {what}: HTTP {exc.code} {exc.reason}", hint) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {what}: {exc.reason}", hint) from None
    except http.client.IncompleteRead as exc:
        raise FetchError(
            f"cannot download {what}: the connection closed after {received + len(exc.partial)} "
            f"bytes of {received + len(exc.partial) + (exc.expected or 0)}",
            hint,
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"cannot download {what}: {type(exc).__name__}: {exc}", hint) from None
    if length is not None and length.isdigit() and int(length) != received:
        raise FetchError(f"cannot download {what}: the server announced {length} bytes and sent {received}", hint)
    return Got(digest.hexdigest(), received)
