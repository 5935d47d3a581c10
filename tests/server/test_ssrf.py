"""The SSRF guard for webhook URLs: which URLs and addresses are refused, and why."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from sync_server.webhooks.ssrf import UnsafeUrl, check_url, resolve_target

PUBLIC = [
    "https://hooks.example.com/doorcheck",
    "http://hooks.example.com:8080/in?x=1",
    "https://8.8.8.8/in",
    "https://[2001:4860:4860::8888]/in",
    "https://cafe.example/",  # a host name made of hex letters is still a name
]

# (url, words the reason must contain)
NON_PUBLIC = [
    ("http://10.0.0.1/", "private address (10.0.0.1)"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://127.0.0.1:8000/", "loopback"),
    ("http://127.1/", "loopback"),  # the short form resolvers accept
    ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
    ("http://0x7f000001/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.127.255.254/", "CGNAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "unique-local"),
    ("http://[fd12:3456::1]/", "unique-local"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
    ("http://[::ffff:10.1.2.3]/", "private"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST.:8080/", "loopback"),
    ("http://api.localhost/", "loopback"),
]

MALFORMED = [
    ("ftp://hooks.example.com/", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://hooks.example.com/", "http or https"),
    ("hooks.example.com/in", "http or https"),
    ("https://user:pass@hooks.example.com/", "user name or password"),
    ("https://user@hooks.example.com/", "user name or password"),
    ("https://@hooks.example.com/", "user name or password"),
    ("https:///path-only", "no host"),
    ("http://", "no host"),
    ("", "empty"),
    ("https://hooks.example.com/" + "a" * 2000, "longer than 2000"),
    ("https://hooks.example.com/a b", "spaces or control"),
    ("https://hooks.example.com/\x00", "spaces or control"),
    ("https://hooks.example.com\r\nX-Injected: 1/", "spaces or control"),
    ("https://hooks.example.com:99999/", "cannot be parsed"),
    ("https://[::1/", "cannot be parsed"),
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_urls_pass(url: str) -> None:
    check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize(("url", "why"), NON_PUBLIC)
def test_non_public_hosts_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, allow_private=False)
    assert why in str(refused.value)
    assert isinstance(refused.value, ValueError)
    check_url(url, allow_private=True)  # a private deployment may allow them


@pytest.mark.parametrize(("url", "why"), MALFORMED)
def test_malformed_urls_are_refused_even_when_private_is_allowed(url: str, why: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(UnsafeUrl) as refused:
            check_url(url, allow_private=allow_private)
        assert why in str(refused.value)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://8.8.8.8/in", "8.8.8.8"),
        ("https://[2001:4860:4860::8888]:8443/in", "2001:4860:4860::8888"),
        ("http://2130706433/", "127.0.0.1"),
    ],
)
def test_resolve_target_answers_a_literal_without_dns(url: str, address: str) -> None:
    allow = address == "127.0.0.1"
    assert resolve_target(url, allow_private=allow) == address


def test_resolve_target_checks_every_resolved_address() -> None:
    # `localhost` resolves (from /etc/hosts, no network) to loopback addresses only.
    assert resolve_target("http://localhost:9/", allow_private=True) in ("127.0.0.1", "::1")
    with pytest.raises(UnsafeUrl, match="loopback"):
        resolve_target("http://localhost:9/", allow_private=False)
    for url, why in NON_PUBLIC:
        with pytest.raises(UnsafeUrl) as refused:
            resolve_target(url, allow_private=False)
        assert why in str(refused.value), url


def test_resolve_target_refuses_what_does_not_resolve() -> None:
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        resolve_target("https://no-such-host.invalid/", allow_private=False)
    for url, _ in MALFORMED:
        with pytest.raises(UnsafeUrl):
            resolve_target(url, allow_private=True)


def test_a_host_name_resolving_to_a_private_address_is_refused_at_send_time() -> None:
    host = socket.gethostname()  # in /etc/hosts: resolves without a network
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, 80)}
    except OSError:
        pytest.skip("this machine's own name does not resolve")
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip("this machine's own name resolves to a public address")
    url = f"http://{host}:8080/hook"
    check_url(url, allow_private=False)  # a name: only resolving tells
    with pytest.raises(UnsafeUrl) as refused:
        resolve_target(url, allow_private=False)
    assert f"{host} resolves to a" in str(refused.value)
    assert any(a in str(refused.value) for a in addresses)
    assert resolve_target(url, allow_private=True) in addresses
