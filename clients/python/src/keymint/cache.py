"""An optional, local cache of successful verifications.

Keymint already answers repeated verifications from its own cache in well under
a millisecond, and its README advises asking on every request. A
:class:`VerifyCache` saves the network round trip for services that call
Keymint over a slow link, at a price:

- **Staleness**: a key revoked, rotated out, deleted or changed in Keymint keeps
  being accepted here for up to ``ttl`` seconds (default 5).
- **Only free verifications are cached.** A result is stored only when it is
  ``VALID`` *and* spent nothing: the key has no credits (unlimited use) and no
  rate limit applied to the call, and the call named no rate limit. So credits
  and rate limits are always settled by Keymint, on every call; a key with
  credits or ``auto_apply`` limits is never answered from this cache.
- **Not counted**: a call answered from this cache is not seen by Keymint, so it
  is missing from the key's usage analytics and does not move ``last_used_at``.
- Refusals (``NOT_FOUND``, ``REVOKED``, ``INSUFFICIENT_PERMISSIONS``, …) are
  never cached: each is asked again, so Keymint's failure budgets keep working.

Entries are keyed by an HMAC-SHA-256 of the key and the permission query,
under a random secret made when the cache is: the key itself is never kept,
and the digests mean nothing outside this process. The cache is bounded
(least recently used entries are dropped beyond ``max_size``) and safe to share
between threads and between a sync and an async client.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Optional, Tuple

from .models import VerifyResult

__all__ = ["VerifyCache"]


class VerifyCache:
    """A bounded LRU of successful, free verifications, each trusted for ``ttl`` seconds."""

    def __init__(
        self,
        ttl: float = 5.0,
        max_size: int = 10_000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive (leave the cache out to turn it off)")
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.ttl = float(ttl)
        self.max_size = int(max_size)
        self._clock = clock
        self._secret = os.urandom(32)
        self._entries: "OrderedDict[bytes, Tuple[float, VerifyResult]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"VerifyCache(ttl={self.ttl!r}, max_size={self.max_size!r}, size={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def digest(self, key: str, permissions: Optional[str]) -> bytes:
        """The entry's name for ``key`` asked with ``permissions`` (never the key itself)."""
        message = key.encode("utf-8", "surrogatepass") + b"\x00" + (permissions or "").encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def get(self, key: str, permissions: Optional[str]) -> Optional[VerifyResult]:
        """The cached result for ``key`` and ``permissions`` if fresh, else ``None``."""
        name = self.digest(key, permissions)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                self.misses += 1
                return None
            expires, result = entry
            if expires <= now:
                del self._entries[name]
                self.misses += 1
                return None
            self._entries.move_to_end(name)
            self.hits += 1
            return result

    @staticmethod
    def cacheable(result: VerifyResult, *, named_ratelimits: bool) -> bool:
        """Whether ``result`` may be stored: valid, and nothing was spent or counted against a limit."""
        return (
            result.valid
            and result.code == "VALID"
            and result.credits is None
            and not result.ratelimits
            and not named_ratelimits
        )

    def put(
        self, key: str, permissions: Optional[str], result: VerifyResult, *, named_ratelimits: bool = False
    ) -> bool:
        """Stores ``result`` if :meth:`cacheable`; returns whether it did."""
        if not self.cacheable(result, named_ratelimits=named_ratelimits):
            return False
        name = self.digest(key, permissions)
        expires = self._clock() + self.ttl
        with self._lock:
            self._entries[name] = (expires, result)
            self._entries.move_to_end(name)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
        return True

    def evict_key_id(self, key_id: str) -> int:
        """Forgets every entry of the key with id ``key_id``; returns how many.

        The clients call it themselves after they update, rotate, revoke or
        delete a key, or change its credits, so a process that both manages
        and verifies keys never answers from a stale entry.
        """
        with self._lock:
            names = [name for name, (_, result) in self._entries.items() if result.key_id == key_id]
            for name in names:
                del self._entries[name]
            return len(names)

    def clear(self) -> None:
        """Forgets every entry."""
        with self._lock:
            self._entries.clear()
