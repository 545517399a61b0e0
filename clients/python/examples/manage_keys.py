"""Creating, listing and revoking keys from code (README: "Managing keys from code")."""

from __future__ import annotations

import os

from keymint import Keymint

with Keymint(os.environ.get("KEYMINT_URL", "http://127.0.0.1:8080"), token=os.environ["KEYMINT_TOKEN"]) as km:
    key = km.keys.create(name="acme-billing", environment="live", permissions=["billing.read"])
    print(key.id, key.private_key)  # the private key: shown once, store it now
    for listed in km.keys.list(environment="live"):  # every page, following Link
        print(listed.name, listed.usage_24h)
    km.keys.revoke(key.id)
