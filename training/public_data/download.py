"""Fetching a dataset's archive: over HTTP(S) with resume, or from a local copy, always checksum-verified.

Standard library only (urllib, hashlib), so `reviewscore data` works in the lean scoring install.
A download goes to `NAME.part` in the cache folder and becomes `NAME` only once its sha256 matches:
an interrupted download leaves a `.part` that the next attempt (in this run or the next one) resumes
with an HTTP Range request, or restarts cleanly when the server ignores the range. A verified archive
in the cache is reused, so converting again (`--overwrite`) needs no second download.

A download that fails (no network, a server error, a transfer that keeps breaking off) says in one
line what to fetch by other means: the archive's name, its checksum and `--source PATH_OR_URL`. It
leaves only what the next attempt can use: the `.part` with the bytes received, or, when none
arrived, not even the folders it created for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from training.public_data.dataset import PublicDataError

if TYPE_CHECKING:
    import http.client

__all__ = ["ATTEMPTS", "Archive", "DownloadProgress", "fetch_archive", "sha256_of"]

DownloadProgress = Callable[[int, int | None], None]
"""Called with (bytes on disk, total bytes or None when the server does not say) as a download advances."""

ATTEMPTS = 3
"""Transfers tried per run when a response breaks off midway; each resumes where the last one stopped."""
CHUNK = 1 << 20
TIMEOUT_S = 60
USER_AGENT = "reviewscore-data"


@dataclass(frozen=True)
class Archive:
    path: Path
    origin: str
    """How it was obtained, for the command's output: downloaded, cached or a local file."""


class _Interrupted(Exception):
    """A response that ended before its announced length: worth another attempt from where it stopped."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch_archive(
    source: str, cache: Path, name: str, sha256: str, progress: DownloadProgress | None = None
) -> Archive:
    """The archive at `source` (http(s):// URL, file:// URL or local path), verified against `sha256`.

    URLs are downloaded into `cache/name`; local files are read where they are (no copy).
    """
    sha256 = sha256.lower()
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return _download(source, cache, name, sha256, progress)
    if parts.scheme == "file":
        from urllib.request import url2pathname

        local = Path(url2pathname(parts.path))
    elif len(parts.scheme) <= 1:  # a plain path (a one-letter scheme is a Windows drive)
        local = Path(source)
    else:
        raise PublicDataError(f"cannot fetch {source}: use an http://, https:// or file:// URL, or a local path")
    if not local.is_file():
        raise PublicDataError(f"cannot read the archive {source}: no such file")
    _verify(local, sha256, source)
    return Archive(local, f"local file {local}")


def _download(url: str, cache: Path, name: str, sha256: str, progress: DownloadProgress | None) -> Archive:
    target = cache / name
    if target.is_file() and sha256_of(target) == sha256:
        return Archive(target, f"cached {target}")
    created = _make_folder(cache)
    part = cache / f"{name}.part"
    try:
        _transfer_with_retries(url, part, progress)
    except PublicDataError as e:
        kept = part.stat().st_size if part.is_file() else 0
        if not kept:
            part.unlink(missing_ok=True)
            _remove_empty(created)
        elsewhere = f"get {name} (sha256 {sha256}) another way and pass it with --source PATH_OR_URL"
        resume = f"run the command again to resume the {kept:,} bytes received, or " if kept else ""
        raise PublicDataError(f"{e}; {resume}{elsewhere}") from None
    try:
        _verify(part, sha256, url)
    except PublicDataError:
        part.unlink()  # never resume onto bytes that are known to be wrong
        _remove_empty(created)
        raise
    os.replace(part, target)
    return Archive(target, f"downloaded from {url} to {target}")


def _make_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; returns those it created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders `_make_folder` created, innermost first, where they are still empty."""
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _transfer_with_retries(url: str, part: Path, progress: DownloadProgress | None) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(url, part, progress)
            return
        except _Interrupted as e:
            if attempt == ATTEMPTS:
                raise PublicDataError(f"the download of {url} broke off {ATTEMPTS} times ({e})") from None


def _transfer(url: str, part: Path, progress: DownloadProgress | None) -> None:
    """One request: resume `part` when the server honours the range, else write it from the start."""
    import http.client

    have = part.stat().st_size if part.is_file() else 0
    response = _open(url, have)
    if response is None or (response.status == 206 and _range_start(response) != have):
        # 416 (the .part reaches past the end) or a range we did not ask for: the .part is no prefix to trust
        if response is not None:
            response.close()
        part.unlink(missing_ok=True)
        have, response = 0, _open(url, 0)
    with response:
        done = have if response.status == 206 else 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else None
        if progress:
            progress(done, total)
        with part.open("ab" if done else "wb") as out:
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            except (OSError, http.client.HTTPException) as e:
                raise _Interrupted(f"{type(e).__name__} after {done:,} bytes") from None
    if total is not None and done < total:
        raise _Interrupted(f"{done:,} of {total:,} bytes")


def _open(url: str, start: int) -> http.client.HTTPResponse | None:
    """The response to GET `url` from byte `start`; None when the server answers 416 (range not satisfiable).

    urllib and http.client load here, not with the module: `reviewscore --help` lists this module's datasets."""
    import http.client
    import urllib.error
    import urllib.request

    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:
            return None
        raise PublicDataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise PublicDataError(f"cannot reach {url}: {reason}") from None


def _range_start(response: http.client.HTTPResponse) -> int | None:
    """The first byte a 206 response carries, from `Content-Range: bytes START-END/TOTAL`."""
    value = response.headers.get("Content-Range", "")
    unit, _, span = value.partition(" ")
    start = span.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _verify(path: Path, sha256: str, source: str) -> None:
    found = sha256_of(path)
    if found != sha256:
        raise PublicDataError(
            f"checksum mismatch: {source} has sha256 {found}, expected {sha256} "
            "(another archive? pass its checksum with --sha256)"
        )
