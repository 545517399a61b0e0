"""A FastAPI service whose routes need a Keymint API key.

The README's "Integrate your service" shows this file, and
tests/test_examples.py runs it against a real Keymint.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from fastapi import Depends, FastAPI

from keymint import AsyncKeymint, VerifyResult
from keymint.fastapi import install_error_handler, require_api_key

# Verifying needs no token: the caller's key is the credential.
keymint = AsyncKeymint(os.environ.get("KEYMINT_URL", "http://127.0.0.1:8080"))
app = FastAPI()
install_error_handler(app)  # refusals as {"detail", "code"}, like Keymint's own


@app.get("/reports")
async def reports(key: VerifyResult = Depends(require_api_key(keymint, permissions="reports.read"))) -> Dict[str, Any]:
    return {"organization": key.org_id, "owner": key.owner_id}


exports = require_api_key(keymint, cost=10, tags=lambda request: [f"path={request.url.path}"])


@app.post("/exports")
async def export(key: VerifyResult = Depends(exports)) -> Dict[str, Any]:
    return {"credits_left": key.credits.remaining if key.credits else None}
