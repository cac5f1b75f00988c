"""Outbound URLs that reach the service from a request (today: a per-request teacher's
`base_url`). The operator decides where the service may connect, not a workspace (SSRF):

- the URL must be http or https, with a host, and without credentials, query or fragment;
- it must match an entry of the operator's allow-list (scheme, host, port and path prefix; "*"
  allows any URL that passes the next check);
- every address its host resolves to must be public: loopback, link-local (where cloud metadata
  services answer), private, shared, multicast, reserved and unspecified addresses are refused
  unless the operator allows that range.

The API checks when the request arrives (a 422 that says why) and the worker checks again right
before it connects, since settings and DNS answers can change in between. URLs are parsed with
httpx's parser, the one the teacher client connects with, so both read the same host.
Plain Python: no FastAPI, so a worker can run it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(ValueError):
    """A URL the service will not connect to; the message says why in plain words."""


@dataclass(frozen=True)
class BaseURL:
    """A parsed base URL: scheme, host (lower case, IPv6 without brackets), port (the scheme's
    default when none is given) and path without a trailing slash."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def api_root(self) -> str:
        """The URL requests go under: a bare host gets /v1, as the teacher client does."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}{'' if default else f':{self.port}'}{self.path or '/v1'}"

    def under(self, other: BaseURL) -> bool:
        """Whether this URL is `other` or below it (whole path segments)."""
        mine, theirs = self.path or "/v1", other.path or "/v1"
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port) and (
            mine == theirs or mine.startswith(theirs.rstrip("/") + "/")
        )


def parse_base_url(value: object) -> BaseURL:
    """Parse an endpoint's base URL, or raise EgressRefused saying what is wrong with it."""
    if not isinstance(value, str) or not value.strip():
        raise EgressRefused("the URL is empty")
    shown = _shown(value)
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in value):
        raise EgressRefused(f"{shown} is not a URL: it holds spaces, control characters or '\\'")
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError) as exc:
        raise EgressRefused(f"{shown} is not a URL ({exc})") from exc
    if url.scheme not in _DEFAULT_PORTS:
        what = f"the scheme {url.scheme}:" if url.scheme else "no scheme"
        raise EgressRefused(f"{shown} is not an http or https URL (it has {what})")
    if not url.host:
        raise EgressRefused(f"{shown} has no host")
    if url.userinfo:
        raise EgressRefused(f"{shown} holds credentials; send the key as api_key instead")
    if url.query or url.fragment:
        raise EgressRefused(f"{shown} has a query or fragment; a base URL has neither")
    return BaseURL(
        scheme=url.scheme,
        host=url.host.lower(),
        port=url.port or _DEFAULT_PORTS[url.scheme],
        path=url.path.rstrip("/"),
    )


def check_url(
    value: object,
    allowed_urls: Sequence[str],
    allowed_networks: Sequence[str] = (),
    *,
    resolve: Resolver | None = None,
) -> BaseURL:
    """The parsed URL when the service may connect to it; else EgressRefused with the reason
    (and what the operator can set to allow it)."""
    url = parse_base_url(value)
    shown = _shown(value)
    if not allowed_urls:
        raise EgressRefused(
            f"{shown} is not an allowed teacher endpoint: this service allows no per-request "
            "URL (its operator can list some in DOCADAPT_TEACHER_ALLOWED_URLS)"
        )
    if "*" not in allowed_urls and not any(
        url.under(parse_base_url(entry)) for entry in allowed_urls if entry != "*"
    ):
        raise EgressRefused(
            f"{shown} is not an allowed teacher endpoint; allowed: " + ", ".join(allowed_urls)
        )
    check_addresses(url, allowed_networks, resolve=resolve)
    return url


def check_addresses(
    url: BaseURL, allowed_networks: Sequence[str] = (), *, resolve: Resolver | None = None
) -> list[IPAddress]:
    """Every address `url`'s host resolves to, each public or inside an allowed network; else
    EgressRefused naming the first that is not."""
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
    literal = _literal_ip(url.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = (resolve or _resolve)(url.host, url.port)
        except OSError as exc:
            raise EgressRefused(f"the host {url.host} does not resolve ({exc})") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise EgressRefused(f"the host {url.host} resolves to no address")
    for address in addresses:
        plain = _unmapped(address)
        if any(plain in net for net in networks):
            continue
        kind = _non_public_kind(plain)
        if kind is not None:
            via = "" if literal is not None else f" ({url.host} resolves to {address})"
            raise EgressRefused(
                f"{url.scheme}://{url.host} is {kind} address{via}; the service does not "
                "connect there unless its operator allows the range in "
                "DOCADAPT_TEACHER_ALLOWED_NETWORKS"
            )
    return addresses


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4 address written as IPv6 (::ffff:a.b.c.d) is checked as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _non_public_kind(address: IPAddress) -> str | None:
    """'a loopback' etc. for an address that is not public, None for a public one."""
    if address.is_unspecified:
        return "an unspecified"
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local (cloud metadata)"
    if address.is_multicast:
        return "a multicast"
    if address.is_private:
        return "a private"
    if not address.is_global:
        return "a reserved, non-public"
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "...'"
