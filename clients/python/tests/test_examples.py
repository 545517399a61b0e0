"""The README's FastAPI example (examples/fastapi_app.py), run against a real Keymint."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import AsyncIterator

import httpx
import pytest

from keymint import Keymint

from .conftest import Server

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


@pytest.fixture
def example(keymint_server: Server, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The example reads KEYMINT_URL when it is loaded.
    monkeypatch.setenv("KEYMINT_URL", keymint_server.url)
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def service(example: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=example.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client
    await example.keymint.aclose()


@pytest.mark.anyio
async def test_the_fastapi_example_serves_a_good_key_and_refuses_the_others(
    km: Keymint, org: str, service: httpx.AsyncClient
) -> None:
    reader = km.keys.create("reader", permissions=["reports.read"], owner_id="cus_1")
    stranger = km.keys.create("stranger")
    metered = km.keys.create("metered", credits={"remaining": 15})

    none = await service.get("/reports")
    assert none.status_code == 401 and none.json()["code"] == "api_key_required"
    assert none.headers.get("www-authenticate")
    denied = await service.get("/reports", headers={"x-api-key": stranger.private_key})
    assert denied.status_code == 403 and denied.json()["code"] == "insufficient_permissions"
    served = await service.get("/reports", headers={"authorization": f"Bearer {reader.private_key}"})
    assert served.status_code == 200
    assert served.json() == {"organization": org, "owner": "cus_1"}

    exported = await service.post("/exports", headers={"x-api-key": metered.private_key})
    assert exported.json() == {"credits_left": 5}
    spent = await service.post("/exports", headers={"x-api-key": metered.private_key})
    assert spent.status_code == 429 and spent.json()["code"] == "usage_exceeded"


def test_the_key_management_example_creates_lists_and_revokes(keymint_server: Server, km: Keymint, token: str) -> None:
    env = {**os.environ, "KEYMINT_URL": keymint_server.url, "KEYMINT_TOKEN": token}
    script = EXAMPLE.parent / "manage_keys.py"
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, *listed = done.stdout.splitlines()
    key_id, private_key = first.split(" ")
    assert private_key.startswith("sk_live_")
    assert "acme-billing 0" in listed
    assert km.keys.get(key_id).is_revoked
