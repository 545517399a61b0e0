"""Small shared types: the "not given" sentinel and parameter shapes."""

from __future__ import annotations

from typing import Any, Dict, Final, List, Literal, Mapping, Optional, Sequence, TypedDict, Union

__all__ = [
    "NOT_GIVEN",
    "NotGiven",
    "RateLimitParam",
    "CreditsParam",
    "RefillParam",
    "RateLimitCostParam",
    "ImportItemParam",
    "Environment",
    "RateLimitCosts",
]


class NotGiven:
    """The type of :data:`NOT_GIVEN`: "this argument was not passed".

    ``None`` means JSON ``null`` (which clears a field in an update); ``NOT_GIVEN``
    means the field is left out of the request body altogether.
    """

    _instance: Optional["NotGiven"] = None

    def __new__(cls) -> "NotGiven":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""Sentinel: the argument was not given (as opposed to ``None``, JSON ``null``)."""

Environment = Literal["live", "test"]


class RefillParam(TypedDict, total=False):
    """``credits.refill`` of a create or update body."""

    interval: Literal["daily", "monthly"]
    amount: int
    refill_day: int


class CreditsParam(TypedDict, total=False):
    """``credits`` of a create or update body: ``{"remaining": n, "refill": …}``."""

    remaining: int
    refill: Optional[RefillParam]


class RateLimitParam(TypedDict, total=False):
    """One of a key's rate limits: ``{"name", "limit", "duration_ms", "auto_apply"}``."""

    name: str
    limit: int
    duration_ms: int
    auto_apply: bool


class RateLimitCostParam(TypedDict, total=False):
    """What a verification takes from one of the key's rate limits."""

    name: str
    cost: int


class ImportItemParam(TypedDict, total=False):
    """One key to import: the create fields plus exactly one of ``key`` or ``hash``."""

    name: str
    key: str
    hash: Dict[str, str]
    environment: Optional[str]
    description: Optional[str]
    expires_at: Optional[str]
    permissions: Optional[List[str]]
    owner_id: Optional[str]
    meta: Optional[Dict[str, Any]]
    credits: Optional[CreditsParam]
    ratelimits: Optional[List[RateLimitParam]]


# What a verification may say about rate limits: ``{"exports": 2}``,
# ``["exports"]`` (cost 1) or ``[{"name": "exports", "cost": 2}]``.
RateLimitCosts = Union[Mapping[str, int], Sequence[Union[str, RateLimitCostParam, Mapping[str, Any]]]]
