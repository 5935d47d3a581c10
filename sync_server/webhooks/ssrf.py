"""The SSRF guard for webhook URLs: `check_url` on create and update, `resolve_target` at send
time (connect to the address it answers, so DNS cannot change between check and connect)."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit

__all__ = ["MAX_URL_LENGTH", "UnsafeUrl", "check_url", "resolve_target", "unsafe_reason"]

MAX_URL_LENGTH = 2000
_SCHEMES = frozenset({"http", "https"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_V4 = re.compile(r"[0-9a-fA-FxX.]+")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A webhook URL we refuse to call; the message says why."""


def unsafe_reason(ip: IPAddress) -> str | None:
    """Why `ip` is no place to send a webhook (``"a loopback address"``), or None if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return unsafe_reason(embedded)
        if ip in _UNIQUE_LOCAL:
            return "a unique-local address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 0x21 or ch == "\x7f" for ch in url):
        raise UnsafeUrl("the URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UnsafeUrl(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise UnsafeUrl("the URL must use http or https")
    if "@" in parts.netloc:
        raise UnsafeUrl("the URL may not carry a user name or password")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    return parts


def _literal(host: str) -> IPAddress | None:
    """The IP a host names literally, including the legacy forms resolvers accept
    (``127.1``, ``0x7f000001``, ``2130706433``); None for a host name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that is not http(s), has no host or has userinfo, or whose host is a
    non-public IP literal (unless `allow_private`): ``check_url("https://x.example/h",
    allow_private=False)``. Host names are checked when resolved, by `resolve_target`."""
    parts = _split(url)
    host = parts.hostname or ""
    ip = _literal(host)
    if ip is not None and not allow_private:
        reason = unsafe_reason(ip)
        if reason is not None:
            raise UnsafeUrl(f"the host is {reason} ({ip})")
    if ip is None and not allow_private and host.rstrip(".").lower().endswith("localhost"):
        raise UnsafeUrl(f"the host {host} is a loopback name")


def resolve_target(url: str, *, allow_private: bool) -> str:
    """The address to connect to for `url`: ``resolve_target("http://127.0.0.1:8080/",
    allow_private=True) == "127.0.0.1"``. Refused if any address it resolves to is unsafe."""
    check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = _literal(host)
    if literal is not None:
        return str(literal)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl(f"the host {host} does not resolve: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = _literal(str(info[4][0]))
        if ip is not None and ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeUrl(f"the host {host} does not resolve to an IP address")
    if not allow_private:
        for ip in addresses:
            reason = unsafe_reason(ip)
            if reason is not None:
                raise UnsafeUrl(f"the host {host} resolves to {reason} {ip}")
    return str(addresses[0])
