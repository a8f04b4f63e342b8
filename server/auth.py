"""Who is calling: the identity the authentication interceptor established for a call.

(Placeholder of the lead while the interceptor is written: every caller is the anonymous local
identity.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Identity:
    tenant: str
    user: str
    token_id: str = ""


LOCAL = Identity("local", "local")  # an anonymous caller on loopback


def identity_of(context: Any) -> Identity:
    """The identity of this call (LOCAL when no interceptor is installed)."""
    return LOCAL
