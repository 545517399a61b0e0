"""FastAPI app for the middleware overhead benchmark (run-middleware.sh):
/bare answers at once; /guarded first verifies the caller's key with
require_api_key (one verification per request, answered from Keymint's own
cache); /cached through a client with a local cache of valid verdicts."""

from __future__ import annotations

import os
from typing import Any, Dict

from fastapi import Depends, FastAPI

from keymint import AsyncKeymint, VerifyCache, VerifyResult
from keymint.fastapi import install_error_handler, require_api_key

keymint = AsyncKeymint(os.environ["KEYMINT_URL"], max_retries=0)
app = FastAPI()
install_error_handler(app)


@app.get("/bare")
async def bare() -> Dict[str, Any]:
    return {"ok": True}


@app.get("/guarded")
async def guarded(key: VerifyResult = Depends(require_api_key(keymint))) -> Dict[str, Any]:
    return {"ok": True, "org": key.org_id}


cached_client = AsyncKeymint(os.environ["KEYMINT_URL"], max_retries=0, verify_cache=VerifyCache(ttl=10, max_size=1000))
cached_guard = require_api_key(cached_client)


@app.get("/cached")
async def cached(key: VerifyResult = Depends(cached_guard)) -> Dict[str, Any]:
    return {"ok": True, "org": key.org_id}
