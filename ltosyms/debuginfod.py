"""Fetch a vmlinux or module debug file by build id from debuginfod servers.

A small client of the debuginfod web API (elfutils ``debuginfod(8)``: ``GET
/buildid/<BUILDID>/debuginfo`` and ``/executable``) that follows the conventions of the
elfutils client library (``debuginfod-client-config(7)``), so it shares a cache with
``debuginfod-find``, gdb and ``scripts/decode_stacktrace.sh``:

- servers come from ``$DEBUGINFOD_URLS`` (space separated) or from the caller (``--debuginfod
  URL``); there is no default server, so nothing is contacted unless the user asked for it;
- files are cached as ``<cache>/<buildid>/debuginfo`` (or ``executable``) under
  ``$DEBUGINFOD_CACHE_PATH``, else ``$XDG_CACHE_HOME/debuginfod_client``, else the deprecated
  ``~/.debuginfod_client_cache`` if it exists, else ``~/.cache/debuginfod_client``;
- ``$DEBUGINFOD_TIMEOUT`` (seconds, default 90; zero or negative: none): a transfer that
  averages less than 100 KB/s for that long is abandoned, from the connection on, headers
  included (libcurl's low-speed limit, which the elfutils client sets);
  ``$DEBUGINFOD_MAXTIME`` (seconds) bounds the whole transfer, ``$DEBUGINFOD_MAXSIZE`` the file
  size in bytes (0: no limit; checked on ``Content-Length`` and again while streaming). A
  watchdog thread enforces both time limits, so a server that trickles bytes cannot hold a
  blocked read. The variables are read as the elfutils client reads them (``atoi``/``atol``:
  leading blanks, a sign and digits; whatever follows is ignored, with a warning); a value
  with no digits at all (``inf``, ``nan``, ``soon``) is an error, where elfutils would
  silently read 0 (no limit).

A build id is validated as lowercase hex before it is put in a URL or a path. A download goes to
a temporary file beside its final place and is renamed there only after it opened as an ELF
image carrying the requested build id, so the cache never holds a partial or wrong file. The
cache is not a way in: its directories must be real directories owned by the user (a
``<build id>`` entry planted as a symbolic link to another directory is refused, not written
through) and cached files are opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import logging
import os
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ltosyms import __version__
from ltosyms.debuginfod_transfer import TransferAborted, TransferLimits
from ltosyms.elf.image import open_image
from ltosyms.errors import CacheError, InputError, LtosymsError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 90.0  # seconds (debuginfod-client-config(7) $DEBUGINFOD_TIMEOUT)
CHUNK_BYTES = 1 << 20
# C long, what atol() returns at most (and least) on a 64-bit system.
_LONG_MAX = (1 << 63) - 1
_C_INTEGER = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")

# Even-length lowercase hex, 1 to 64 bytes. GNU ld and lld write 8 (lld "fast"), 16 (md5,
# uuid) or 20 (sha1, what kernels use: BUILD_ID_SIZE_MAX in include/linux/buildid.h) bytes.
_BUILD_ID = re.compile(r"(?:[0-9a-f]{2}){1,64}")

# Reports a download's progress: (bytes received, expected total or None).
ProgressCallback = Callable[[int, int | None], None]


class DebuginfodError(LtosymsError):
    """A server could not deliver a file (unreachable, timed out, refused, sent a bad file)."""


class DebuginfoNotFound(DebuginfodError):
    """Every server answered 404: none has the file for this build id."""


class DownloadTooLarge(DebuginfodError):
    """The file is larger than ``$DEBUGINFOD_MAXSIZE``."""


class InvalidBuildId(InputError):
    """A build id that is not lowercase hex of a plausible length."""


class Artifact(enum.Enum):
    """What to fetch (the last component of the debuginfod URL and of the cache path)."""

    DEBUGINFO = "debuginfo"
    EXECUTABLE = "executable"

    @property
    def description(self) -> str:
        return "debug info" if self is Artifact.DEBUGINFO else "executable"


@dataclass(frozen=True, slots=True, kw_only=True)
class DebuginfodConfig:
    """Where to ask and where to keep files; build one with :meth:`from_environment`."""

    urls: tuple[str, ...]
    cache_dir: Path
    timeout: float | None = DEFAULT_TIMEOUT  # None: no timeout
    max_time: float | None = None  # None: no limit
    max_size: int | None = None  # bytes; None: no limit

    @classmethod
    def from_environment(
        cls,
        urls: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> DebuginfodConfig:
        """The configuration the elfutils client would use; ``urls`` replaces
        ``$DEBUGINFOD_URLS`` when given (``--debuginfod URL``)."""
        env = os.environ if environ is None else environ
        chosen = list(urls) if urls else env.get("DEBUGINFOD_URLS", "").split()
        timeout = _c_long(env, "DEBUGINFOD_TIMEOUT", int(DEFAULT_TIMEOUT))
        max_time = _c_long(env, "DEBUGINFOD_MAXTIME", 0)
        max_size = _c_long(env, "DEBUGINFOD_MAXSIZE", 0)
        return cls(
            urls=tuple(validate_url(url) for url in chosen),
            cache_dir=default_cache_dir(env),
            timeout=float(timeout) if timeout > 0 else None,
            max_time=float(max_time) if max_time > 0 else None,
            max_size=max_size if max_size > 0 else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedFile:
    """A debug file on local disk, in the cache."""

    build_id: str
    artifact: Artifact
    path: Path
    size: int
    url: str | None  # where it was downloaded from; None when it came from the cache

    @property
    def from_cache(self) -> bool:
        return self.url is None


def validate_build_id(build_id: str) -> str:
    """The build id in canonical form (lowercase hex), or :class:`InvalidBuildId`.

    This is the only gate between text from a log and a URL or cache path: nothing but hex
    digits may pass (no ``/``, ``..``, ``%``, whitespace, newline or non-ASCII digit)."""
    canonical = build_id.lower()
    if not _BUILD_ID.fullmatch(canonical):
        shown = build_id if len(build_id) <= 80 else build_id[:77] + "..."
        raise InvalidBuildId(
            f"{shown!r} is not a build id (expected 2 to 128 hex digits, 40 for sha1)"
        )
    return canonical


def validate_url(url: str) -> str:
    """An http(s) server URL without trailing slashes, or :class:`InputError`."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError as error:
        raise InputError(f"debuginfod URL {url!r} is malformed: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"debuginfod URL {url!r} is not an http:// or https:// server URL")
    if parts.query or parts.fragment:
        raise InputError(f"debuginfod URL {url!r} must not have a query or fragment")
    return url.rstrip("/")


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The cache directory of the elfutils client (debuginfod-client-config(7) "CACHE")."""
    env = os.environ if environ is None else environ
    if env.get("DEBUGINFOD_CACHE_PATH"):
        return Path(env["DEBUGINFOD_CACHE_PATH"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "debuginfod_client"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    deprecated = home / ".debuginfod_client_cache"
    if deprecated.is_dir():
        return deprecated
    return home / ".cache" / "debuginfod_client"


class DebuginfodClient:
    """Fetches files by build id from the configured servers, through the cache."""

    def __init__(self, config: DebuginfodConfig) -> None:
        self.config = config

    @classmethod
    def from_environment(
        cls, urls: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> DebuginfodClient:
        return cls(DebuginfodConfig.from_environment(urls, environ))

    def cache_path(self, build_id: str, artifact: Artifact = Artifact.DEBUGINFO) -> Path:
        return self.config.cache_dir / validate_build_id(build_id) / artifact.value

    def cached(self, build_id: str, artifact: Artifact = Artifact.DEBUGINFO) -> FetchedFile | None:
        """The cached file for ``build_id`` if there is a usable one (no network)."""
        build_id = validate_build_id(build_id)
        path = self.cache_path(build_id, artifact)
        try:
            _check_cache_directory(self.config.cache_dir, follow_symlinks=True)
            _check_cache_directory(path.parent, follow_symlinks=False)
            size = path.lstat().st_size
        except (OSError, CacheError):
            return None
        # An empty file is the elfutils client's negative-cache mark (a failed query), and a
        # file with another build id is not ours to use: both are fetched again.
        try:
            usable = size > 0 and _build_id_of(path, artifact) == build_id
        except DebuginfodError:
            usable = False
        if not usable:
            log.debug("cache entry %s is not usable; fetching again", path)
            return None
        return FetchedFile(build_id=build_id, artifact=artifact, path=path, size=size, url=None)

    def fetch(
        self,
        build_id: str,
        artifact: Artifact = Artifact.DEBUGINFO,
        progress: ProgressCallback | None = None,
    ) -> FetchedFile:
        """The file for ``build_id``: from the cache, else from the first server that has it.

        Raises :class:`InvalidBuildId` before anything is contacted, :class:`DebuginfoNotFound`
        when every server answers 404, :class:`DebuginfodError` for other server failures and
        :class:`~ltosyms.errors.CacheError` when the cache cannot be written."""
        build_id = validate_build_id(build_id)
        hit = self.cached(build_id, artifact)
        if hit is not None:
            return hit
        if not self.config.urls:
            raise InputError(
                f"no debuginfod server configured to fetch build id {build_id} "
                "(set DEBUGINFOD_URLS or pass --debuginfod URL)"
            )
        directory = self._cache_dir_for(build_id)
        failures: list[DebuginfodError] = []
        for base in self.config.urls:
            url = f"{base}/buildid/{build_id}/{artifact.value}"
            try:
                return self._download(url, build_id, artifact, directory, progress)
            except DebuginfodError as error:
                log.info("%s", error)
                failures.append(error)
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if empty: leave no trace of a failed fetch
        if all(isinstance(error, DebuginfoNotFound) for error in failures):
            servers = ", ".join(self.config.urls)
            raise DebuginfoNotFound(
                f"no {artifact.description} for build id {build_id} at {servers}"
            )
        if len(failures) == 1:
            raise failures[0]
        kinds = {type(error) for error in failures if not isinstance(error, DebuginfoNotFound)}
        cls = kinds.pop() if len(kinds) == 1 else DebuginfodError
        raise cls("; ".join(str(error) for error in failures))

    # -- internals ------------------------------------------------------------------------

    def _cache_dir_for(self, build_id: str) -> Path:
        directory = self.config.cache_dir / build_id
        try:
            # 0o700 as the elfutils client creates its cache: debug files may be private.
            self.config.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise CacheError(
                f"cannot create debuginfod cache directory {directory}: {error.strerror or error}"
            ) from None
        try:
            _check_cache_directory(self.config.cache_dir, follow_symlinks=True)
            _check_cache_directory(directory, follow_symlinks=False)
        except OSError as error:
            raise CacheError(
                f"debuginfod cache directory {directory}: {error.strerror or error}"
            ) from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise CacheError(f"debuginfod cache directory {directory} is not writable")
        return directory

    def _download(
        self,
        url: str,
        build_id: str,
        artifact: Artifact,
        directory: Path,
        progress: ProgressCallback | None,
    ) -> FetchedFile:
        headers = {"User-Agent": f"ltosyms/{__version__}"}
        if self.config.max_size is not None:
            # Servers since elfutils 0.186 refuse a larger file instead of sending it.
            headers["X-DEBUGINFOD-MAXSIZE"] = str(self.config.max_size)
        request = urllib.request.Request(url, headers=headers)
        limits = TransferLimits(self.config.timeout, self.config.max_time)
        log.info("fetching %s", url)
        try:
            with limits, contextlib.closing(self._open(request, limits)) as response:
                expected = _expected_size(response)
                self._check_size(url, expected)
                final = directory / artifact.value
                temporary = self._receive(
                    response,
                    url=url,
                    directory=directory,
                    expected=expected,
                    limits=limits,
                    progress=progress,
                )
        except TransferAborted as error:
            raise DebuginfodError(f"{url}: {error}") from None
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                server = url.split("/buildid/", maxsplit=1)[0]
                raise DebuginfoNotFound(
                    f"no {artifact.description} for build id {build_id} at {server}"
                ) from None
            if error.code == 406 and self.config.max_size is not None:
                # elfutils debuginfod answers 406 Not Acceptable when the file is larger
                # than the request's X-DEBUGINFOD-MAXSIZE (seen with 0.188).
                raise DownloadTooLarge(
                    f"{url}: server refused: file larger than DEBUGINFOD_MAXSIZE "
                    f"({self.config.max_size} bytes)"
                ) from None
            raise DebuginfodError(f"{url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
            # A read the watchdog cut short fails in any of these ways: its reason first.
            if limits.reason is not None:
                raise DebuginfodError(f"{url}: {limits.reason}") from None
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            raise DebuginfodError(f"{url}: {_reason(reason)}") from None
        try:
            found = _build_id_of(temporary, artifact)
            if found != build_id:
                raise DebuginfodError(
                    f"{url}: server sent a file with build id {found or 'none'}, not {build_id}"
                )
            size = temporary.stat().st_size
            os.replace(temporary, final)
        except OSError as error:
            raise CacheError(f"cannot store {final}: {error.strerror or error}") from None
        finally:
            temporary.unlink(missing_ok=True)
        log.info("stored %s (%d bytes)", final, size)
        return FetchedFile(build_id=build_id, artifact=artifact, path=final, size=size, url=url)

    def _open(self, request: urllib.request.Request, limits: TransferLimits) -> Any:
        opener = limits.opener(_HttpOnlyRedirects())
        timeout = limits.socket_timeout
        if timeout is None:
            return opener.open(request)
        return opener.open(request, timeout=timeout)

    def _check_size(self, url: str, size: int | None) -> None:
        limit = self.config.max_size
        if limit is not None and size is not None and size > limit:
            raise DownloadTooLarge(
                f"{url}: file is {size} bytes, more than DEBUGINFOD_MAXSIZE ({limit} bytes)"
            )

    def _receive(
        self,
        response: IO[bytes],
        *,
        url: str,
        directory: Path,
        expected: int | None,
        limits: TransferLimits,
        progress: ProgressCallback | None,
    ) -> Path:
        """Stream the body into a temporary file in ``directory``; its path on success."""
        try:
            descriptor, name = tempfile.mkstemp(prefix=".ltosyms-", suffix=".part", dir=directory)
        except OSError as error:
            raise CacheError(
                f"cannot write to debuginfod cache {directory}: {error.strerror or error}"
            ) from None
        temporary = Path(name)
        received = 0
        limit = self.config.max_size
        try:
            with os.fdopen(descriptor, "wb") as output:
                while chunk := response.read(CHUNK_BYTES):  # OSError here: the network's
                    received += len(chunk)
                    limits.received(len(chunk))
                    if limit is not None and received > limit:
                        raise DownloadTooLarge(
                            f"{url}: download exceeds DEBUGINFOD_MAXSIZE ({limit} bytes)"
                        )
                    limits.check()
                    try:
                        output.write(chunk)
                    except OSError as error:  # the disk's: a full or read-only cache
                        raise CacheError(
                            f"cannot write to debuginfod cache {directory}: "
                            f"{error.strerror or error}"
                        ) from None
                    if progress is not None:
                        progress(received, expected)
            limits.check()  # a body cut by the watchdog may end like a whole one
            if expected is not None and received != expected:
                raise DebuginfodError(f"{url}: download truncated: {received} of {expected} bytes")
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (as the elfutils client does) but only to http and https URLs."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            fp.close()
            raise DebuginfodError(f"{req.full_url}: redirect to a non-http URL refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _check_cache_directory(directory: Path, *, follow_symlinks: bool) -> None:
    """A directory of the cache must be a directory owned by the user running us; below the
    cache's own folder (which may be a link the user made) not a symbolic link either, so
    that nothing planted in the cache sends a download, or a read, somewhere else."""
    status = os.stat(directory) if follow_symlinks else os.lstat(directory)
    if stat.S_ISLNK(status.st_mode):
        raise CacheError(
            f"debuginfod cache entry {directory} is a symbolic link, not a directory; "
            "it is not followed (remove it)"
        )
    if not stat.S_ISDIR(status.st_mode):
        raise CacheError(f"debuginfod cache entry {directory} is not a directory")
    if status.st_uid != os.getuid():
        raise CacheError(
            f"debuginfod cache directory {directory} belongs to user id {status.st_uid}, "
            "not to you; it is not used"
        )


def _build_id_of(path: Path, artifact: Artifact) -> str | None:
    """The build id of a downloaded file; ``InputError`` text becomes a DebuginfodError."""
    try:
        # An executable may be stripped; a debuginfo file must have symbols to be of use. A
        # cache entry planted as a symbolic link is not followed.
        with open_image(
            path, require_symtab=artifact is Artifact.DEBUGINFO, follow_symlinks=False
        ) as image:
            return image.build_id
    except InputError as error:
        raise DebuginfodError(f"downloaded file is not usable: {error}") from None


def _expected_size(response: Any) -> int | None:
    # X-DEBUGINFOD-SIZE is the uncompressed size when the server compresses the transfer.
    for header in ("Content-Length", "X-DEBUGINFOD-SIZE"):
        value = response.headers.get(header)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def _c_long(env: Mapping[str, str], name: str, default: int) -> int:
    """``$name`` as the elfutils client reads it with ``atol`` (debuginfod-client.c): leading
    white space, a sign, decimal digits; the rest is ignored (we say so), a value out of
    range is clamped as strtol clamps it. Unlike elfutils, an empty value means unset, and a
    value without digits is an error instead of a silent 0, which would mean "no limit"."""
    text = env.get(name, "")
    if not text.strip():
        return default
    match = _C_INTEGER.match(text)
    if match is None:
        raise InputError(f"{name}={text!r} is not a whole number")
    sign, digits = match.groups()
    # No int() of thousands of digits: beyond 19 the value is out of a C long's range anyway.
    magnitude = int(digits) if len(digits.lstrip("0")) <= 19 else _LONG_MAX + 1
    value = -magnitude if sign == "-" else magnitude
    if match.end() < len(text.rstrip()):
        log.warning("%s=%r: read as %d, as debuginfod-find reads it", name, text, value)
    return max(-_LONG_MAX - 1, min(value, _LONG_MAX))


def _reason(error: object) -> str:
    if isinstance(error, TimeoutError):
        return "timed out (DEBUGINFOD_TIMEOUT)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error) or type(error).__name__
    return text.splitlines()[0] if text else text
