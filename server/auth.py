"""Who is calling: API tokens checked by a server interceptor, and the identity it established.

Every call but the health and reflection services carries ``authorization: Bearer <token>``
metadata. :class:`AuthInterceptor` checks it with a verifier (the store's ``verify_token``,
which compares hashes in constant time) and attaches the caller's :class:`Identity` to the
call's context; the servicer reads it with :func:`identity_of`. A missing token is accepted only
from a loopback peer (as :data:`LOCAL`) and only when ``allow_anonymous_loopback``; a token that
is present but unknown, revoked or malformed is refused everywhere with ``UNAUTHENTICATED``, and
the answer never says which. The token is never logged.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc


@dataclass(frozen=True)
class Identity:
    tenant: str
    user: str
    token_id: str = ""


LOCAL = Identity("local", "local")  # an anonymous caller on loopback

# services any caller may use without a token: health probes and schema discovery (`buf curl`,
# grpcurl); they read nothing of a tenant's
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")
MISSING_TOKEN = "missing API token: send metadata 'authorization: Bearer <token>'"
INVALID_TOKEN = "invalid API token"
_ATTRIBUTE = "_lepton_identity"  # where the identity rides on the call's context object

log = logging.getLogger("lepton_alloc.auth")

Verifier = Callable[[str], Identity | None]

# a method handler's four kinds of behaviour, and how grpc builds a handler of each
_KINDS = (("unary_unary", grpc.unary_unary_rpc_method_handler), ("unary_stream", grpc.unary_stream_rpc_method_handler),
          ("stream_unary", grpc.stream_unary_rpc_method_handler), ("stream_stream", grpc.stream_stream_rpc_method_handler))


def rewrapped(handler: Any, wrap: Callable[[str, Any], Any], request_deserializer: Any) -> Any:
    """The server interceptors' one way to change a method handler: its behaviour replaced by
    ``wrap(kind, behaviour)`` (kind: "unary_unary", "unary_stream", ...), its requests read by
    ``request_deserializer``, its response serializer kept."""
    for kind, make in _KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return make(wrap(kind, behaviour), request_deserializer, handler.response_serializer)
    return handler


def identity_of(context: Any) -> Identity:
    """The identity the interceptor established for this call (LOCAL when no interceptor is
    installed, e.g. a servicer called directly in a test)."""
    identity = getattr(context, _ATTRIBUTE, None)
    return identity if isinstance(identity, Identity) else LOCAL


def peer_is_loopback(peer: str) -> bool:
    """Whether a gRPC peer string names this machine: ``ipv4:127.x.x.x:PORT``,
    ``ipv6:[::1]:PORT`` (brackets possibly %-encoded; IPv4-mapped loopback included), or a Unix
    domain socket (``unix:``, ``unix-abstract:``)."""
    peer = unquote(peer or "")
    scheme, _, rest = peer.partition(":")
    if scheme in ("unix", "unix-abstract"):
        return True
    if scheme not in ("ipv4", "ipv6"):
        return False
    host = rest.rsplit(":", 1)[0] if scheme == "ipv4" else rest.rsplit("]", 1)[0].lstrip("[")
    return ip_is_loopback(host.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) is not part of it


def ip_is_loopback(host: str) -> bool:
    """Whether an IPv4 or IPv6 literal (IPv4-mapped included) is this machine's loopback; a name,
    or "" (every interface), is not."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def bearer_token(metadata: Any) -> str | None:
    """The token of ``authorization: Bearer <token>`` metadata; None when there is no
    authorization metadata, "" when it is there but malformed (refused like a wrong token)."""
    values = [v for k, v in (metadata or ()) if k == "authorization"]
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str):
        return ""
    scheme, _, token = values[0].strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class AuthInterceptor(grpc.ServerInterceptor):
    """Establishes the caller's :class:`Identity` for every call (see the module docstring)."""

    def __init__(self, verify: Verifier, allow_anonymous_loopback: bool = True):
        self.verify = verify
        self.allow_anonymous_loopback = allow_anonymous_loopback

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(EXEMPT_PREFIXES):
            return handler
        # the peer is known only inside the call: authenticate there, before the servicer runs
        authenticate = self._authenticate

        def guarded(behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def run(request: Any, context: Any) -> Any:
                setattr(context, _ATTRIBUTE, authenticate(method, context))
                return behaviour(request, context)

            return run

        return rewrapped(handler, lambda _kind, behaviour: guarded(behaviour), handler.request_deserializer)

    def _authenticate(self, method: str, context: Any) -> Identity:
        """The caller's identity, or the call is aborted with UNAUTHENTICATED."""
        token = bearer_token(context.invocation_metadata())
        peer = context.peer() or ""
        if token is None:
            if self.allow_anonymous_loopback and peer_is_loopback(peer):
                return LOCAL
            log.info("refused %s from %s: no API token", method, peer)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, MISSING_TOKEN)
        identity: Identity | None = None
        if token:
            try:
                identity = self.verify(token)
            except Exception as exc:  # noqa: BLE001 - the store failed: a retryable answer, not INTERNAL
                # the type only: an error message could quote what the verifier was given
                log.error("cannot check the API token of a call to %s from %s (%s)", method, peer,
                          type(exc).__name__)
                context.abort(grpc.StatusCode.UNAVAILABLE, "cannot check the API token now; try again")
        if identity is None:
            log.info("refused %s from %s: invalid API token", method, peer)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, INVALID_TOKEN)
        assert identity is not None  # context.abort raised otherwise
        return identity
