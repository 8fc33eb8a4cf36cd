"""The time limits of one debuginfod download, held for the whole transfer.

The elfutils client hands its limits to libcurl (debuginfod-client.c ``init_handle`` and
``perform_queries``): ``$DEBUGINFOD_TIMEOUT`` becomes ``CURLOPT_LOW_SPEED_TIME`` with
``CURLOPT_LOW_SPEED_LIMIT`` 100 KB/s -- a transfer that averages less than that for so many
seconds is abandoned, the wait for the response headers included -- and
``$DEBUGINFOD_MAXTIME`` bounds the whole query. A socket timeout cannot do either: it only
bounds each single read, and a server that sends a byte now and then (in its headers or its
body) never lets one time out. :class:`TransferLimits` runs a watchdog thread that measures
the speed as libcurl does (lib/speedcheck.c ``Curl_speedcheck``, over the last five seconds,
lib/progress.c) and shuts the connection's socket down when a limit is passed, which ends any
read blocked on it; the downloading thread then raises :class:`TransferAborted`.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import socket
import threading
import time
import urllib.request
from typing import Any

# debuginfod-client.c init_handle: CURLOPT_LOW_SPEED_LIMIT.
LOW_SPEED_BYTES_PER_SECOND = 100 * 1024
# libcurl's current speed is the average over the last five seconds (CURR_TIME 5 + 1).
_SPEED_WINDOW_SECONDS = 5.0
_WATCH_INTERVAL_SECONDS = 0.1
# socket.settimeout() takes no more than this; a longer limit is none in practice.
_LONGEST_SOCKET_TIMEOUT = float(1 << 31)


class TransferAborted(Exception):
    """The watchdog stopped the transfer; ``str()`` says which limit, in one line."""


class TransferLimits:
    """Watches one download: call :meth:`received` with every body chunk, :meth:`check`
    after every read; use :meth:`opener` to open the URL and as a context manager around the
    whole transfer (it starts and stops the watchdog)."""

    def __init__(self, timeout: float | None, max_time: float | None) -> None:
        self.timeout = (
            timeout if timeout is not None and timeout < _LONGEST_SOCKET_TIMEOUT else None
        )
        self.max_time = (
            max_time if max_time is not None and max_time < _LONGEST_SOCKET_TIMEOUT else None
        )
        self.reason: str | None = None
        self._received = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="debuginfod-watchdog", daemon=True)

    # -- the downloading thread ------------------------------------------------------------

    def __enter__(self) -> TransferLimits:
        self._started = time.monotonic()
        if self.timeout is not None or self.max_time is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def socket_timeout(self) -> float | None:
        """For connecting (no socket to watch yet) and each read: the shortest limit."""
        limits = [limit for limit in (self.timeout, self.max_time) if limit is not None]
        return min(limits) if limits else None

    def opener(self, *handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
        """An opener whose HTTP(S) connections report their socket to the watchdog."""
        return urllib.request.build_opener(
            *handlers, _WatchedHTTPHandler(self), _WatchedHTTPSHandler(self)
        )

    def received(self, size: int) -> None:
        self._received += size

    def check(self) -> None:
        if self.reason is not None:
            raise TransferAborted(self.reason)

    def attach(self, connection_socket: socket.socket) -> None:
        with self._lock:
            self._sockets.append(connection_socket)
            aborted = self.reason is not None
        if aborted:
            _shut(connection_socket)

    # -- the watchdog thread ---------------------------------------------------------------

    def _watch(self) -> None:
        samples: collections.deque[tuple[float, int]] = collections.deque()
        samples.append((self._started, 0))
        slow_since: float | None = None
        while not self._stop.wait(_WATCH_INTERVAL_SECONDS):
            now = time.monotonic()
            if self.max_time is not None and now - self._started > self.max_time:
                self._abort(f"download took longer than DEBUGINFOD_MAXTIME ({self.max_time:g} s)")
                return
            if self.timeout is None:
                continue
            received = self._received
            samples.append((now, received))
            while now - samples[0][0] > _SPEED_WINDOW_SECONDS:
                samples.popleft()
            since, then = samples[0]
            speed = (received - then) / (now - since)
            if speed >= LOW_SPEED_BYTES_PER_SECOND:
                slow_since = None
            elif slow_since is None:
                slow_since = now
            elif now - slow_since >= self.timeout:
                self._abort(
                    f"timed out: less than 100 KB/s for {self.timeout:g} s (DEBUGINFOD_TIMEOUT)"
                )
                return

    def _abort(self, reason: str) -> None:
        with self._lock:
            self.reason = reason
            sockets = list(self._sockets)
        for connection_socket in sockets:
            _shut(connection_socket)


def _shut(connection_socket: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on this socket (close() would not).
    with contextlib.suppress(OSError):
        connection_socket.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, limits: TransferLimits, host: str, **options: Any) -> None:
        super().__init__(host, **options)
        self.limits = limits

    def connect(self) -> None:
        super().connect()
        self.limits.attach(self.sock)


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, limits: TransferLimits, host: str, **options: Any) -> None:
        super().__init__(host, **options)
        self.limits = limits

    def connect(self) -> None:
        super().connect()
        self.limits.attach(self.sock)


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, limits: TransferLimits) -> None:
        super().__init__()
        self.limits = limits

    def http_open(self, req: urllib.request.Request) -> Any:
        def connection(host: str, /, **options: Any) -> http.client.HTTPConnection:
            return _WatchedHTTPConnection(self.limits, host, **options)

        return self.do_open(connection, req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, limits: TransferLimits) -> None:
        super().__init__()
        self.limits = limits

    def https_open(self, req: urllib.request.Request) -> Any:
        def connection(host: str, /, **options: Any) -> http.client.HTTPConnection:
            return _WatchedHTTPSConnection(self.limits, host, **options)

        context = getattr(self, "_context", None)  # what HTTPSHandler.https_open passes
        return self.do_open(connection, req, context=context)
