"""Fixtures: one real Keymint process for the whole session, a fresh organisation per test.

The binary is ``$KEYMINT_BIN`` (default: this checkout's ``target/debug/keymint``).
It runs on a free loopback port with a throwaway SQLite database, and is stopped
when the session ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import httpx
import pytest

from keymint import AsyncKeymint, Keymint

DEFAULT_BIN = str(Path(__file__).resolve().parents[3] / "target" / "debug" / "keymint")
DEV_SECRET = "keymint-development-secret-do-not-use-in-production"

T = TypeVar("T")


@dataclass
class Server:
    url: str
    bin: str
    log: Path
    workdir: Path
    process: "subprocess.Popen[bytes]"

    def token(self, org: str, sub: str = "pytest") -> str:
        out = subprocess.run(
            [self.bin, "dev-token", "--org", org, "--sub", sub, "--ttl", "3600"],
            check=True,
            capture_output=True,
            env=_server_env_base(),
            cwd=self.workdir,  # never a checkout's config/ folder
            timeout=30,
        )
        return out.stdout.decode().strip()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env_base() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMINT_")}
    env["KEYMINT_LOG__LEVEL"] = "warn"
    return env


@pytest.fixture(scope="session")
def keymint_server() -> Iterator[Server]:
    binary = os.environ.get("KEYMINT_BIN", DEFAULT_BIN)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        found = shutil.which(binary)
        if not found:
            pytest.fail(f"Keymint binary not found at {binary!r}: set KEYMINT_BIN", pytrace=False)
        binary = found
    workdir = Path(tempfile.mkdtemp(prefix="keymint-py-"))
    port = _free_port()
    env = _server_env_base()
    env.update(
        {
            "KEYMINT_SERVER__LISTEN": f"127.0.0.1:{port}",
            "KEYMINT_DATABASE__URL": f"sqlite://{workdir}/keymint.db?mode=rwc",
            "KEYMINT_LOG__LEVEL": "info",
            # Counts and last_used_at reach storage within a second.
            "KEYMINT_VERIFY__USAGE_FLUSH_SECONDS": "1",
            "KEYMINT_ANALYTICS__FLUSH_SECONDS": "1",
            "KEYMINT_VERIFY__USAGE_RESOLUTION_SECONDS": "0",
            # Many tests verify wrong keys from 127.0.0.1: only the per-key budget stays.
            "KEYMINT_VERIFY__MAX_FAILURES_PER_CLIENT": "100000",
            # Webhooks may call the local receiver these tests run.
            "KEYMINT_WEBHOOKS__ALLOW_HTTP": "true",
            "KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
            "KEYMINT_WEBHOOKS__BACKOFF_BASE_SECONDS": "1",
            "KEYMINT_WEBHOOKS__POLL_INTERVAL_MS": "200",
        }
    )
    log = workdir / "keymint.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "serve"], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(url=f"http://127.0.0.1:{port}", bin=binary, log=log, workdir=workdir, process=process)
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"keymint exited with {process.returncode}:\n{server.log_tail()}", pytrace=False)
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"keymint was not ready within 60 s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def org() -> str:
    """A fresh organisation per test: lists and limits start empty."""
    return str(uuid.uuid4())


@pytest.fixture
def token(keymint_server: Server, org: str) -> str:
    return keymint_server.token(org)


@pytest.fixture
def km(keymint_server: Server, token: str) -> Iterator[Keymint]:
    with Keymint(keymint_server.url, token=token, timeout=10, max_retries=0) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def akm(keymint_server: Server, token: str) -> Any:
    async with AsyncKeymint(keymint_server.url, token=token, timeout=10, max_retries=0) as client:
        yield client


def hs256_token(claims: Dict[str, Any], secret: str = DEV_SECRET) -> str:
    """A bearer token signed with the development secret, for claims dev-token cannot make."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def eventually(check: Callable[[], Optional[T]], timeout: float = 15.0, interval: float = 0.25) -> T:
    """Polls ``check`` until it returns something truthy (for counts flushed every second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(interval)


class Receiver:
    """A local webhook endpoint: records every delivery; answers ``status`` (changeable)."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(body or b"null")})
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the requests per path (to see what a cache saved)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: List[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)

    def count(self, suffix: str) -> int:
        return sum(1 for p in self.paths if p.endswith(suffix))


class AsyncCountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: List[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)

    def count(self, suffix: str) -> int:
        return sum(1 for p in self.paths if p.endswith(suffix))
