"""Every exception class, from real Keymint answers (and real network failures), with its request id."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import keymint
from keymint import Keymint
from keymint._base import Call

from .conftest import Server, _free_port, _server_env_base, hs256_token


def _assert_request_id(err: keymint.KeymintError) -> None:
    assert err.request_id and uuid.UUID(err.request_id)
    assert err.request_id in str(err)


def test_authentication_error(keymint_server: Server, token: str) -> None:
    with Keymint(keymint_server.url, token=None) as anonymous:
        with pytest.raises(keymint.AuthenticationError) as info:
            anonymous.keys.create("x")
    err = info.value
    assert err.status == 401 and err.code == "not_authenticated"
    assert err.headers["www-authenticate"] == 'Bearer realm="keymint"'
    _assert_request_id(err)

    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with Keymint(keymint_server.url, token=bad) as forged:
        with pytest.raises(keymint.AuthenticationError) as info:
            list(forged.keys.list())
    assert info.value.code == "invalid_token"
    # Neither the token nor its signature is ever in a message or repr.
    for text in (str(info.value), repr(info.value), repr(forged)):
        assert bad not in text and bad[-20:] not in text


def test_permission_denied_error(keymint_server: Server) -> None:
    no_org = hs256_token({"sub": "pytest", "exp": int(time.time()) + 600, "iat": int(time.time())})
    with Keymint(keymint_server.url, token=no_org) as km:
        with pytest.raises(keymint.PermissionDeniedError) as info:
            km.keys.get(uuid.uuid4())
    assert info.value.status == 403 and info.value.code == "no_organization"
    _assert_request_id(info.value)


def test_not_found_error(km: Keymint) -> None:
    with pytest.raises(keymint.NotFoundError) as info:
        km.webhooks.get(uuid.uuid4())
    assert info.value.status == 404 and info.value.code == "not_found"
    assert info.value.detail == "Webhook not found"
    _assert_request_id(info.value)


def test_conflict_error(km: Keymint) -> None:
    created = km.keys.create("c")
    km.keys.revoke(created.id)
    with pytest.raises(keymint.ConflictError) as info:
        km.keys.rotate(created.id, 10)
    assert info.value.status == 409 and info.value.code == "key_revoked"
    _assert_request_id(info.value)


def test_validation_error_lists_every_field(km: Keymint) -> None:
    with pytest.raises(keymint.ValidationError) as info:
        km.keys.create("", environment="prod", scope="all")
    err = info.value
    assert err.status == 422 and err.code == "validation_error"
    assert sorted(e.field for e in err.errors) == ["environment", "name", "scope"]
    assert {e.type for e in err.errors} == {"string_too_short", "literal_error", "extra_forbidden"}
    assert err.for_field("name")[0].msg == "name must have at least 1 character"
    assert err.detail == err.errors
    assert "name: name must have at least 1 character" in str(err)
    _assert_request_id(err)


def test_bad_request_error_from_a_malformed_body(km: Keymint) -> None:
    # The client only sends valid JSON (NaN is refused before sending) ...
    with pytest.raises(ValueError):
        km.keys.create("nan", meta={"x": float("nan")})
    # ... so send a malformed body by hand and read Keymint's real answer.
    response = km._http.post(
        km._url(Call("POST", "/api/v2/api-keys")),
        headers={"authorization": f"Bearer {km._token_value()}", "content-type": "application/json"},
        content=b'{"name": "a", "name": "b"}',
    )
    with pytest.raises(keymint.BadRequestError) as info:
        km._check(response)
    assert info.value.status == 400 and info.value.code == "malformed_json"
    _assert_request_id(info.value)


def test_rate_limit_error_with_retry_after(km: Keymint) -> None:
    created = km.keys.create("leak-budget")
    km.keys.delete(created.id)
    for _ in range(10):
        km.keys.revoke_leaked(created.private_key)  # 202 while the failure budget lasts
    with pytest.raises(keymint.RateLimitError) as info:
        km.keys.revoke_leaked(created.private_key)
    err = info.value
    assert err.status == 429 and err.code == "rate_limited" and err.retry_after == 5.0
    _assert_request_id(err)
    assert created.private_key not in str(err) and created.private_key not in repr(err)


@pytest.fixture(scope="module")
def busy_server(keymint_server: Server) -> Iterator[str]:
    """A second Keymint whose request-body budget one slow upload fills: every body gets 503 server_busy."""
    workdir = Path(tempfile.mkdtemp(prefix="keymint-busy-"))
    port = _free_port()
    env = _server_env_base()
    env.update(
        {
            "KEYMINT_SERVER__LISTEN": f"127.0.0.1:{port}",
            "KEYMINT_DATABASE__URL": "memory:",
            "KEYMINT_SERVER__BODY_MEMORY_BYTES": "1024",
            "KEYMINT_SERVER__BODY_LIMIT_BYTES": "1024",
            "KEYMINT_SERVER__IMPORT_BODY_LIMIT_BYTES": "1024",
            "KEYMINT_SERVER__BODY_TIMEOUT_SECONDS": "30",
        }
    )
    process = subprocess.Popen(
        [keymint_server.bin, "serve"], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "busy keymint did not start"
            time.sleep(0.1)
        hold = socket.create_connection(("127.0.0.1", port))
        hold.sendall(
            b"POST /api/v2/api-keys/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1024\r\n\r\n{" + b" " * 1022
        )
        time.sleep(0.3)
        yield url
        hold.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_service_unavailable_error_and_safe_retry(busy_server: str) -> None:
    sleeps: list = []
    with Keymint(busy_server, max_retries=2, sleep=sleeps.append) as km:
        with pytest.raises(keymint.ServiceUnavailableError) as info:
            km.verify("sk_live_whatever")
    err = info.value
    assert isinstance(err, keymint.ServerError)
    assert err.status == 503 and err.code == "server_busy" and err.retry_after == 5.0
    _assert_request_id(err)
    # Answered before the body was read, so even a verification was sent again, after Retry-After.
    assert sleeps == [5.0, 5.0]


def test_connection_error() -> None:
    port = _free_port()  # nothing listens there
    sleeps: list = []
    with Keymint(f"http://127.0.0.1:{port}", max_retries=2, sleep=sleeps.append, token="secret-token") as km:
        with pytest.raises(keymint.APIConnectionError) as info:
            km.keys.get(uuid.uuid4())
    assert info.value.status is None and info.value.request_id is None
    assert isinstance(info.value, keymint.ConnectionError)
    assert len(sleeps) == 2  # never sent, so retried whatever the method
    assert "secret-token" not in str(info.value) and "secret-token" not in repr(info.value)


def test_timeout_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # and never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        sleeps: list = []
        with Keymint(f"http://127.0.0.1:{port}", timeout=0.3, max_retries=1, sleep=sleeps.append) as km:
            with pytest.raises(keymint.APITimeoutError) as info:
                km.verify("sk_live_x")  # not idempotent: sent, so not sent again
            assert sleeps == []
            with pytest.raises(keymint.TimeoutError):
                km.keys.get(uuid.uuid4())  # idempotent: retried once
            assert len(sleeps) == 1
        assert isinstance(info.value, keymint.APIConnectionError)
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_secrets_never_in_reprs(keymint_server: Server, token: str) -> None:
    with Keymint(keymint_server.url, token=token) as km:
        assert token not in repr(km)
        created = km.keys.create("secret")
        hook = km.webhooks.create("http://127.0.0.1:9/x", event_types=["key.leaked"])
        assert created.private_key not in repr(created)
        assert hook.secret not in repr(hook)
        assert created.private_key not in repr(km.verify(created.private_key))


def test_environment_defaults(keymint_server: Server, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMINT_URL", keymint_server.url)
    monkeypatch.setenv("KEYMINT_TOKEN", token)
    with Keymint() as km:
        assert str(km.base_url).rstrip("/") == keymint_server.url
        assert km.keys.create("from-env").name == "from-env"
    assert os.environ["KEYMINT_TOKEN"] == token
