"""Outgoing HTTP to the addresses admins name (webhooks): to the public internet only, and
never for long.

A webhook's URL is an admin's to choose, so the service must not become a way into its
own network (a port scanner with a delivery log). Every connection is checked after DNS
resolution, on the address actually connected to, so a name that resolves elsewhere at
delivery than at registration (DNS rebinding) gains nothing. Refused unless
`ROADCHIEF_WEBHOOK_ALLOWED_NETWORKS` names it: every address that is not globally
reachable (loopback, private, link-local such as the cloud metadata 169.254.169.254,
unspecified, shared CGNAT, reserved, documentation), multicast, and IPv6 forms that carry
such an IPv4 address (IPv4-mapped, 6to4, NAT64). Decimal and short IPv4 forms
(`2130706433`, `127.1`) resolve to what they mean before the check.

Each connection also has a wall-clock deadline: a receiver that drips a byte at a time
is cut off when it passes, whatever the per-read timeout would allow.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

from app.core.errors import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The well-known NAT64 prefix: its last 32 bits are an IPv4 address (RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookAddressRefused(Problem):
    code = "webhook_address_refused"
    status = 422
    title = "Webhook 地址指向内部网络"


class AddressRefused(httpcore.ConnectError):
    """The address a connection would reach is not allowed (raised at connect time)."""


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """May a connection reach `address`: public, or in a network the allow-list names."""
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (v4 := _carried_ipv4(address)):
        forms.append(v4)
    if any(form in network for form in forms for network in allowed):
        return True
    return all(form.is_global and not form.is_multicast and not form.is_reserved for form in forms)


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` stands for (an IP literal in any form the resolver reads, or a
    name), in the resolver's order. Raises OSError when it stands for none."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Scope ids ("fe80::1%eth0") are cut: the check is on the address itself.
    addresses = (str(info[4][0]).split("%")[0] for info in found)
    return list(dict.fromkeys(ipaddress.ip_address(a) for a in addresses))


def check_webhook_url(url: str, allowed: Sequence[IPNetwork]) -> None:
    """Refuse (422) a URL whose host is, or resolves to, an address that is not allowed.

    A name that does not resolve now is accepted: delivery checks again on each connection.
    """
    parsed = httpx.URL(url)
    try:
        addresses = resolve(parsed.host, parsed.port or 443)
    except (OSError, UnicodeError):
        return
    refused = [str(a) for a in addresses if not address_allowed(a, allowed)]
    if refused:
        raise WebhookAddressRefused(
            f"{parsed.host} 指向内部或保留地址（{'、'.join(refused)}），不能作为 Webhook 地址",
            host=parsed.host,
        )


class _DeadlineStream(httpcore.NetworkStream):
    """A connection that refuses to wait past its deadline, however slowly bytes come."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream, self._deadline = stream, deadline

    def _left(self, timeout: float | None, expired: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise expired("the attempt's time is up")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # The name checked by TLS (and sent as SNI) stays the URL's: only the socket moved.
        stream = self._stream.start_tls(
            ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves each host itself and connects only to addresses that pass the check."""

    def __init__(self, allowed: Sequence[IPNetwork], attempt_seconds: float) -> None:
        self._allowed, self._attempt_seconds = tuple(allowed), attempt_seconds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self._attempt_seconds
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}") from exc
        checked = [a for a in addresses if address_allowed(a, self._allowed)]
        if not checked:
            raise AddressRefused(f"{host!r} resolves only to addresses that are not allowed")
        failure: Exception | None = None
        for address in checked:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                stream = super().connect_tcp(
                    str(address), port, min(timeout or left, left), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, deadline)
        raise failure or httpcore.ConnectTimeout("the attempt's time is up")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over the guarded backend, one connection per request (a kept-alive
    connection would outlive its deadline), never through a proxy (it would connect for us,
    unchecked)."""

    def __init__(self, allowed: Sequence[IPNetwork], attempt_seconds: float) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend of its own (yet): its pool is rebuilt with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_keepalive_connections=0,
            network_backend=_GuardedBackend(allowed, attempt_seconds),
        )


def guarded_client(allowed: Sequence[IPNetwork], attempt_seconds: float) -> httpx.Client:
    """A client that reaches only allowed addresses, each attempt within `attempt_seconds`
    (connect, send, and the answer's status line and headers)."""
    return httpx.Client(
        transport=GuardedTransport(allowed, attempt_seconds),
        timeout=attempt_seconds,
        follow_redirects=False,
        trust_env=False,
    )
