"""The debuginfod client against a real elfutils ``debuginfod`` serving the sample images.

The server runs on 127.0.0.1 on a free port, scanning a temporary copy of
``testdata/vmlinux-samples``. Without ``/usr/bin/debuginfod`` (Debian package ``debuginfod``)
those tests skip with a reason; ``LTOSYMS_REQUIRE_DEBUGINFOD=1`` (set by ``.ci/run``) turns
the skip into a failure. Failure modes a real server cannot be made to show (a wrong file, a
cut transfer, a stall) are served by a small stdlib HTTP server on loopback.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from ltosyms.cli import cli
from ltosyms.debuginfod import (
    Artifact,
    DebuginfodClient,
    DebuginfodConfig,
    DebuginfodError,
    DebuginfoNotFound,
    DownloadTooLarge,
    InvalidBuildId,
    default_cache_dir,
    validate_build_id,
    validate_url,
)
from ltosyms.elf.image import open_image
from ltosyms.elf.kernel import load_any
from ltosyms.errors import CacheError, InputError

DEBUGINFOD = shutil.which("debuginfod")
DEBUGINFOD_FIND = shutil.which("debuginfod-find")
READY_TIMEOUT = 30.0  # seconds for the server to start and finish its first scan
# -F: scan ELF files; -t 0 -g 0: scan once, never groom; -c 1: one scan thread.
SERVER_OPTIONS = ("-F", "-t", "0", "-g", "0", "-c", "1")


def _sample_images() -> list[Path]:
    return sorted(
        path
        for path in SAMPLES.glob("*")
        if path.is_file() and (path.name.startswith("vmlinux-") or path.suffix == ".ko")
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{_free_port()}"


def _client(cache: Path, *urls: str, **limits: float | int | None) -> DebuginfodClient:
    return DebuginfodClient(DebuginfodConfig(urls=urls, cache_dir=cache, **limits))  # type: ignore[arg-type]


def _tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> content), to show what a call left."""
    if not directory.exists():
        return {}
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


# -- the real server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    images: dict[str, Path]  # build id -> the original sample file
    vmlinux_build_id: str


def _require_debuginfod() -> str:
    if DEBUGINFOD is None:
        reason = "debuginfod is not installed (Debian package debuginfod)"
        if os.environ.get("LTOSYMS_REQUIRE_DEBUGINFOD") == "1":
            pytest.fail(reason + "; LTOSYMS_REQUIRE_DEBUGINFOD=1 requires it")
        pytest.skip(reason)
    return DEBUGINFOD


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=2) as response:
        text = response.read().decode("utf-8", "replace")
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name and not line.startswith("#"):
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def _scan_finished(url: str, expected_files: int) -> bool:
    try:
        metrics = _metrics(url)
    except OSError:
        return False  # not listening yet
    return (
        metrics.get('scanned_files_total{source="file"}', 0) >= expected_files
        and metrics.get('thread_work_pending{role="scan"}', 1) == 0
        and metrics.get('thread_busy{role="scan"}', 1) == 0
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    program = _require_debuginfod()
    samples = _sample_images()
    if not samples:
        pytest.fail(f"no sample images in {SAMPLES}")
    work = tmp_path_factory.mktemp("debuginfod")
    served = work / "served"
    served.mkdir()
    images = {}
    for sample in samples:
        # A copy, not a link: debuginfod ignores symlinks unless -L is given.
        shutil.copyfile(sample, served / sample.name)
        with open_image(sample) as image:
            assert image.build_id, f"{sample} has no build id"
            images[image.build_id] = sample
    vmlinux_build_id = next(b for b, p in images.items() if p.name.startswith("vmlinux-"))
    # The server must not forward misses to servers of the environment (federation).
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")}
    process: subprocess.Popen[bytes] | None = None
    url = ""
    log_path = work / "debuginfod.log"
    for _attempt in range(5):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        database = work / f"db-{port}.sqlite"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [program, *SERVER_OPTIONS, "-p", str(port), "-d", str(database), str(served)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=work,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _scan_finished(url, len(samples)):
                break
            time.sleep(0.05)
        if process.poll() is None:
            break
        process = None  # exited early (port taken between probe and bind): try another port
    if process is None or not _scan_finished(url, len(samples)):
        if process is not None:
            process.kill()
            process.wait()
        log_tail = log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"debuginfod did not become ready in {READY_TIMEOUT} s:\n{log_tail}")
    try:
        yield Server(url, images, vmlinux_build_id)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_fetches_every_sample_by_build_id(server: Server, tmp_path: Path) -> None:
    client = _client(tmp_path / "cache", server.url)
    for build_id, sample in server.images.items():
        fetched = client.fetch(build_id)
        assert fetched.path == tmp_path / "cache" / build_id / "debuginfo"
        assert fetched.url == f"{server.url}/buildid/{build_id}/debuginfo"
        assert not fetched.from_cache
        assert fetched.size == sample.stat().st_size
        assert fetched.path.read_bytes() == sample.read_bytes()
    # Nothing but the final files: no temporary files left behind.
    assert sorted(_tree(tmp_path / "cache")) == sorted(f"{b}/debuginfo" for b in server.images)


def test_second_fetch_is_served_from_the_cache_without_contacting_anyone(
    server: Server, tmp_path: Path
) -> None:
    build_id = server.vmlinux_build_id
    first = _client(tmp_path, server.url).fetch(build_id)
    stamp = first.path.stat().st_mtime_ns
    # Same cache, only an unreachable server: a hit must not need the network.
    second = _client(tmp_path, _dead_url()).fetch(build_id)
    assert second.from_cache
    assert second.path == first.path
    assert second.path.stat().st_mtime_ns == stamp


def test_fetches_the_executable(server: Server, tmp_path: Path) -> None:
    build_id = server.vmlinux_build_id
    fetched = _client(tmp_path, server.url).fetch(build_id, Artifact.EXECUTABLE)
    assert fetched.path == tmp_path / build_id / "executable"
    assert fetched.path.read_bytes() == server.images[build_id].read_bytes()


def test_build_id_is_accepted_in_upper_case(server: Server, tmp_path: Path) -> None:
    build_id = server.vmlinux_build_id
    fetched = _client(tmp_path, server.url).fetch(build_id.upper())
    assert fetched.build_id == build_id
    assert fetched.path.parent.name == build_id


def test_unknown_build_id_is_a_one_line_not_found(server: Server, tmp_path: Path) -> None:
    unknown = "0123456789abcdef0123456789abcdef01234567"
    assert unknown not in server.images
    with pytest.raises(DebuginfoNotFound) as caught:
        _client(tmp_path, server.url).fetch(unknown)
    assert str(caught.value) == f"no debug info for build id {unknown} at {server.url}"
    assert caught.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []  # not even an empty directory for the build id


def test_progress_is_reported(server: Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    build_id = server.vmlinux_build_id
    _client(tmp_path, server.url).fetch(build_id, progress=lambda n, total: seen.append((n, total)))
    size = server.images[build_id].stat().st_size
    assert seen
    assert seen[-1] == (size, size)


def test_maxsize_refuses_a_larger_file_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    build_id = server.vmlinux_build_id
    size = server.images[build_id].stat().st_size
    with pytest.raises(DownloadTooLarge, match="DEBUGINFOD_MAXSIZE"):
        _client(tmp_path, server.url, max_size=size - 1).fetch(build_id)
    assert _tree(tmp_path) == {}
    # At exactly the limit the file is accepted.
    assert _client(tmp_path, server.url, max_size=size).fetch(build_id).size == size


def test_unreachable_server_is_skipped_for_the_next(server: Server, tmp_path: Path) -> None:
    dead = _dead_url()
    environ = {"DEBUGINFOD_URLS": f"{dead}  {server.url}/", "DEBUGINFOD_CACHE_PATH": str(tmp_path)}
    client = DebuginfodClient.from_environment(environ=environ)
    assert client.config.urls == (dead, server.url)
    fetched = client.fetch(server.vmlinux_build_id)
    assert fetched.url is not None and fetched.url.startswith(server.url)


def test_every_server_failing_names_each_failure(server: Server, tmp_path: Path) -> None:
    dead = _dead_url()
    unknown = "ff" * 20
    with pytest.raises(DebuginfodError) as caught:
        _client(tmp_path, dead, server.url).fetch(unknown)
    message = str(caught.value)
    assert "\n" not in message
    assert dead in message and "refused" in message.lower()
    assert f"no debug info for build id {unknown} at {server.url}" in message


def test_damaged_cache_entries_are_fetched_again(server: Server, tmp_path: Path) -> None:
    build_id = server.vmlinux_build_id
    original = server.images[build_id].read_bytes()
    entry = tmp_path / build_id / "debuginfo"
    entry.parent.mkdir(parents=True)
    # An empty file is the elfutils client's negative-cache mark; garbage is a damaged entry;
    # another image is a wrong entry. None of them may be returned.
    other = next(p for b, p in server.images.items() if b != build_id)
    for content in (b"", b"\x7fELF garbage", other.read_bytes()):
        entry.write_bytes(content)
        fetched = _client(tmp_path, server.url).fetch(build_id)
        assert not fetched.from_cache
        assert entry.read_bytes() == original


@pytest.mark.skipif(DEBUGINFOD_FIND is None, reason="debuginfod-find is not installed")
def test_cache_layout_is_shared_with_debuginfod_find(server: Server, tmp_path: Path) -> None:
    """What the elfutils client downloaded, we find in the cache, and the other way round."""
    assert DEBUGINFOD_FIND is not None
    ours, theirs = sorted(server.images)[:2]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")},
        "DEBUGINFOD_URLS": server.url,
        "DEBUGINFOD_CACHE_PATH": str(tmp_path),
    }
    found = subprocess.run(
        [DEBUGINFOD_FIND, "debuginfo", theirs],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(found.stdout.strip()) == tmp_path / theirs / "debuginfo"
    hit = _client(tmp_path, _dead_url()).fetch(theirs)
    assert hit.from_cache
    fetched = _client(tmp_path, server.url).fetch(ours)
    offline = {**environment, "DEBUGINFOD_URLS": _dead_url()}
    found = subprocess.run(
        [DEBUGINFOD_FIND, "debuginfo", ours],
        env=offline,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(found.stdout.strip()) == fetched.path


# -- ltosyms decode, end to end --------------------------------------------------------------


def _function(path: Path) -> tuple[str, int]:
    """A function of the image with its kallsyms size, for a frame a log would print."""
    table = load_any(path).symbols
    symbol = next(s for s in table if s.is_function and s.elf_size > 16 and s.kallsyms_size)
    assert symbol.kallsyms_size is not None
    return symbol.name, symbol.kallsyms_size


def _oops_with_build_ids(vmlinux: Path, module: Path) -> str:
    """An oops as a CONFIG_STACKTRACE_BUILD_ID kernel prints it (lib/dump_stack.c, 6.1):
    the vmlinux build id ends the CPU line, module frames carry theirs."""
    vmlinux_build_id = load_any(vmlinux).build_id
    module_build_id = load_any(module).build_id
    function, size = _function(vmlinux)
    module_function, module_size = _function(module)
    return (
        "BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        f"CPU: 1 PID: 42 Comm: sh Not tainted 6.1.0-sample #1 {vmlinux_build_id}\n"
        f"RIP: 0010:{function}+0x4/{size:#x}\n"
        "Call Trace:\n"
        " <TASK>\n"
        f" {module_function}+0x4/{module_size:#x} [sample_mod {module_build_id}]\n"
        " </TASK>\n"
    )


def test_decode_fetches_vmlinux_and_module_by_the_logs_build_ids(
    server: Server, tmp_path: Path
) -> None:
    vmlinux, module = SAMPLES / "vmlinux-gcc", SAMPLES / "sample_mod-gcc.ko"
    log = tmp_path / "oops.log"
    log.write_text(_oops_with_build_ids(vmlinux, module))
    cache = tmp_path / "debuginfod-cache"
    arguments = ["decode", "--debuginfod", server.url, "--sysroot", str(tmp_path), "--no-cache"]
    result = CliRunner().invoke(
        cli,
        [*arguments, "--json", str(log)],
        env={"DEBUGINFOD_CACHE_PATH": str(cache), "DEBUGINFOD_URLS": None},
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    vmlinux_build_id = load_any(vmlinux).build_id
    assert document["vmlinux"]["build_id"] == vmlinux_build_id
    assert document["vmlinux"]["path"] == str(cache / str(vmlinux_build_id) / "debuginfo")
    frames = {frame["module"]: frame for frame in document["reports"][0]["frames"]}
    assert set(frames) == {None, "sample_mod"}
    for frame, image in ((frames[None], vmlinux), (frames["sample_mod"], module)):
        assert frame["resolved"]["symbol"] == _function(image)[0]
        assert frame["locations"], frame
        assert frame["locations"][-1]["file"].endswith(".c")
    module_entry = cache / str(load_any(module).build_id) / "debuginfo"
    assert module_entry.read_bytes() == module.read_bytes()


def test_decode_says_in_one_line_when_no_server_has_the_build_id(
    server: Server, tmp_path: Path
) -> None:
    log = tmp_path / "oops.log"
    text = _oops_with_build_ids(SAMPLES / "vmlinux-gcc", SAMPLES / "sample_mod-gcc.ko")
    unknown = "0123456789abcdef0123456789abcdef01234567"
    log.write_text(text.replace(str(load_any(SAMPLES / "vmlinux-gcc").build_id), unknown))
    result = CliRunner().invoke(
        cli,
        ["decode", "--debuginfod", server.url, "--sysroot", str(tmp_path), "--no-cache", str(log)],
        env={"DEBUGINFOD_CACHE_PATH": str(tmp_path / "cache"), "DEBUGINFOD_URLS": None},
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"no debug info for build id {unknown} at {server.url}" in lines[0]


# -- a loopback stub for failures a real server does not show ----------------------------------


@dataclass
class Stub:
    url: str
    requests: list[str]


Responder = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def stub() -> Iterator[Callable[[Responder], Stub]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(respond: Responder) -> Stub:
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                respond(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        return Stub(f"http://127.0.0.1:{httpd.server_address[1]}", requests)

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _send(handler: http.server.BaseHTTPRequestHandler, body: bytes, length: int | None) -> None:
    handler.send_response(200)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()
    handler.wfile.write(body)
    handler.close_connection = True


SAMPLE_VMLINUX = SAMPLES / "vmlinux-gcc"


def _sample_bytes_and_build_id() -> tuple[bytes, str]:
    if not SAMPLE_VMLINUX.is_file():
        pytest.fail(f"{SAMPLE_VMLINUX} is missing")
    with open_image(SAMPLE_VMLINUX) as image:
        assert image.build_id
        return SAMPLE_VMLINUX.read_bytes(), image.build_id


def test_a_file_with_another_build_id_is_rejected(
    stub: Callable[[Responder], Stub], tmp_path: Path
) -> None:
    body, build_id = _sample_bytes_and_build_id()
    server = stub(lambda h: _send(h, body, len(body)))
    asked = "00" * 20
    with pytest.raises(DebuginfodError, match=f"build id {build_id}, not {asked}"):
        _client(tmp_path, server.url).fetch(asked)
    assert _tree(tmp_path) == {}  # neither the wrong file nor its temporary copy stays


def test_a_cut_transfer_is_rejected(stub: Callable[[Responder], Stub], tmp_path: Path) -> None:
    body, build_id = _sample_bytes_and_build_id()
    server = stub(lambda h: _send(h, body[: len(body) // 2], len(body)))
    with pytest.raises(DebuginfodError, match="download truncated: "):
        _client(tmp_path, server.url).fetch(build_id)
    assert _tree(tmp_path) == {}


def test_maxsize_is_enforced_while_streaming(
    stub: Callable[[Responder], Stub], tmp_path: Path
) -> None:
    body, build_id = _sample_bytes_and_build_id()
    server = stub(lambda h: _send(h, body, None))  # no Content-Length to check up front
    with pytest.raises(DownloadTooLarge, match="exceeds DEBUGINFOD_MAXSIZE"):
        _client(tmp_path, server.url, max_size=1000).fetch(build_id)
    assert _tree(tmp_path) == {}
    assert server.requests == [f"/buildid/{build_id}/debuginfo"]


def test_a_stalled_server_times_out(stub: Callable[[Responder], Stub], tmp_path: Path) -> None:
    _, build_id = _sample_bytes_and_build_id()
    release = threading.Event()
    server = stub(lambda h: release.wait(5))
    started = time.monotonic()
    try:
        with pytest.raises(DebuginfodError, match="timed out"):
            _client(tmp_path, server.url, timeout=0.3).fetch(build_id)
    finally:
        release.set()
    assert time.monotonic() - started < 3


def test_server_errors_and_odd_redirects_are_one_line(
    stub: Callable[[Responder], Stub], tmp_path: Path
) -> None:
    _, build_id = _sample_bytes_and_build_id()

    def broken(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_error(500, "Internal Server Error")

    def redirect(location: str) -> Responder:
        def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.end_headers()

        return respond

    cases = (
        (broken, "HTTP 500"),
        (redirect("file:///etc/passwd"), "is not allowed"),  # urllib refuses file: itself
        (redirect("ftp://127.0.0.1:1/x"), "redirect to a non-http URL refused"),
    )
    for respond, expected in cases:
        with pytest.raises(DebuginfodError) as caught:
            _client(tmp_path, stub(respond).url).fetch(build_id)
        assert expected in str(caught.value)
        assert "\n" not in str(caught.value)
    assert _tree(tmp_path) == {}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a",
        "abc",
        "../../etc/passwd",
        "ab/cd",
        "ab\n",
        " ab",
        "0x1234",
        "%2e%2e",
        "\u0661\u0662",
        "ab" * 65,
        "zz" * 20,
    ],
)
def test_invalid_build_ids_never_reach_a_path_or_url(
    bad: str, stub: Callable[[Responder], Stub], tmp_path: Path
) -> None:
    server = stub(lambda h: h.send_error(404))
    cache = tmp_path / "cache"
    client = _client(cache, server.url)
    with pytest.raises(InvalidBuildId) as caught:
        client.fetch(bad)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidBuildId):
        client.cache_path(bad)
    assert server.requests == []
    assert not cache.exists()


def test_valid_build_ids_are_canonical_lowercase_hex() -> None:
    assert validate_build_id("AB") == "ab"
    assert validate_build_id("5DA8440987EE912BD0BC6E618305851976609700") == (
        "5da8440987ee912bd0bc6e618305851976609700"
    )
    assert validate_build_id("ab" * 64) == "ab" * 64


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/debuginfo",
        "ftp://example.org",
        "localhost:8002",
        "http://",
        "http:///x",
        "http://127.0.0.1:99999",
        "http://host/?q=1",
    ],
)
def test_only_http_server_urls_are_accepted(url: str) -> None:
    with pytest.raises(InputError):
        validate_url(url)


def test_server_url_trailing_slashes_are_dropped() -> None:
    assert validate_url("http://127.0.0.1:8002/") == "http://127.0.0.1:8002"
    assert validate_url("https://debuginfod.debian.net/sub/") == "https://debuginfod.debian.net/sub"


def test_no_server_is_contacted_unless_configured(tmp_path: Path) -> None:
    client = DebuginfodClient.from_environment(environ={"DEBUGINFOD_CACHE_PATH": str(tmp_path)})
    assert client.config.urls == ()
    with pytest.raises(InputError, match="set DEBUGINFOD_URLS or pass --debuginfod URL"):
        client.fetch("ab" * 20)


def test_explicit_urls_replace_the_environment(tmp_path: Path) -> None:
    environ = {"DEBUGINFOD_URLS": "http://from-env:8002", "DEBUGINFOD_CACHE_PATH": str(tmp_path)}
    config = DebuginfodConfig.from_environment(["http://127.0.0.1:1/"], environ)
    assert config.urls == ("http://127.0.0.1:1",)


def test_cache_directory_follows_the_elfutils_client(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    assert default_cache_dir(env) == home / ".cache" / "debuginfod_client"
    (home / ".debuginfod_client_cache").mkdir()  # the deprecated place, used if it exists
    assert default_cache_dir(env) == home / ".debuginfod_client_cache"
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert default_cache_dir(env) == tmp_path / "xdg" / "debuginfod_client"
    env["DEBUGINFOD_CACHE_PATH"] = str(tmp_path / "explicit")
    assert default_cache_dir(env) == tmp_path / "explicit"


def test_limits_from_the_environment(tmp_path: Path) -> None:
    base = {"DEBUGINFOD_CACHE_PATH": str(tmp_path)}
    default = DebuginfodConfig.from_environment(environ=base)
    assert (default.timeout, default.max_time, default.max_size) == (90.0, None, None)
    custom = DebuginfodConfig.from_environment(
        environ={
            **base,
            "DEBUGINFOD_TIMEOUT": "5",
            "DEBUGINFOD_MAXTIME": "60",
            "DEBUGINFOD_MAXSIZE": "1048576",
        }
    )
    assert (custom.timeout, custom.max_time, custom.max_size) == (5.0, 60.0, 1048576)
    # Zero or negative means "no limit" (debuginfod-client-config(7)).
    off = DebuginfodConfig.from_environment(
        environ={**base, "DEBUGINFOD_TIMEOUT": "0", "DEBUGINFOD_MAXSIZE": "-1"}
    )
    assert (off.timeout, off.max_size) == (None, None)
    for name in ("DEBUGINFOD_TIMEOUT", "DEBUGINFOD_MAXSIZE", "DEBUGINFOD_MAXTIME"):
        with pytest.raises(InputError, match=re.escape(f"{name}='soon' is not a whole number")):
            DebuginfodConfig.from_environment(environ={**base, name: "soon"})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # atol(3): leading white space, a sign, digits; the rest is ignored.
        ("5", 5),
        (" \t7", 7),
        ("+8", 8),
        ("12s", 12),
        ("2.9", 2),
        ("1e3", 1),
        ("0x10", 0),
        ("-3", -3),
        # beyond a C long, strtol clamps: no limit in practice, and no OverflowError
        ("9" * 5000, (1 << 63) - 1),
        ("-" + "9" * 30, -(1 << 63)),
    ],
)
def test_limits_are_read_as_the_elfutils_client_reads_them(text: str, value: int) -> None:
    from ltosyms.debuginfod import _c_long

    assert _c_long({"DEBUGINFOD_MAXSIZE": text}, "DEBUGINFOD_MAXSIZE", 0) == value


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "NaN", "soon", "+", " - 1", "\u0661"])
def test_limits_without_digits_are_one_line_errors(text: str, tmp_path: Path) -> None:
    """elfutils would read these as 0, which means "no limit": a typo would lift the bound."""
    for name in ("DEBUGINFOD_TIMEOUT", "DEBUGINFOD_MAXSIZE", "DEBUGINFOD_MAXTIME"):
        environ = {"DEBUGINFOD_CACHE_PATH": str(tmp_path), name: text}
        with pytest.raises(InputError) as caught:
            DebuginfodConfig.from_environment(environ=environ)
        assert str(caught.value) == f"{name}={text!r} is not a whole number"


def test_a_huge_timeout_is_no_limit_rather_than_an_overflow(tmp_path: Path) -> None:
    config = DebuginfodConfig.from_environment(
        environ={
            "DEBUGINFOD_CACHE_PATH": str(tmp_path),
            "DEBUGINFOD_TIMEOUT": "9" * 40,
            "DEBUGINFOD_MAXTIME": "9" * 40,
            "DEBUGINFOD_MAXSIZE": "9" * 40,
        }
    )
    assert config.max_size == (1 << 63) - 1
    assert config.timeout == config.max_time == float((1 << 63) - 1)


def test_an_unusable_cache_directory_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"user file")
    client = _client(blocker / "cache", _dead_url())
    with pytest.raises(CacheError) as caught:
        client.fetch("ab" * 20)
    assert caught.value.exit_code == 4
    assert "cannot create debuginfod cache directory" in str(caught.value)
    assert blocker.read_bytes() == b"user file"
