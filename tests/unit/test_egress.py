"""Outbound URLs from requests (SSRF): the operator's allow-list and the address check, with the
host names resolved by a stand-in resolver (names) or written as literal addresses."""

from __future__ import annotations

import pytest

from service.core.egress import EgressRefused, check_url, parse_base_url


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "not an http or https URL"),
        ("gopher://example.com:70/_x", "not an http or https URL"),
        ("not a url", "not a URL"),
        ("example.com/v1", "not an http or https URL"),
        ("http://", "has no host"),
        ("http://user:pw@example.com/v1", "holds credentials"),
        ("http://example.com/v1?x=1", "query or fragment"),
        ("http://example.com\\@10.0.0.1/", "not a URL"),
        ("", "empty"),
    ],
)
def test_what_is_not_an_http_base_url_is_refused(url: str, why: str) -> None:
    with pytest.raises(EgressRefused, match=why):
        check_url(url, ["*"], resolve=resolver({"example.com": ["93.184.216.34"]}))


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://[::1]:8000/v1", "loopback"),
        ("http://[::ffff:127.0.0.1]/v1", "loopback"),
        ("http://10.1.2.3/v1", "private"),
        ("http://192.168.0.7/v1", "private"),
        ("http://0.0.0.0/v1", "unspecified"),
        ("http://100.64.0.1/v1", "non-public"),
        ("http://224.0.0.1/v1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused_even_when_any_url_is_allowed(url: str, kind: str) -> None:
    with pytest.raises(EgressRefused, match=kind) as refused:
        check_url(url, ["*"])
    assert "DOCADAPT_TEACHER_ALLOWED_NETWORKS" in str(refused.value)


def test_every_address_of_a_name_is_checked() -> None:
    # One public and one private answer: the private one is enough to refuse.
    resolve = resolver({"teacher.example": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(EgressRefused, match=r"private.*teacher\.example resolves to 10\.0\.0\.5"):
        check_url("https://teacher.example/v1", ["*"], resolve=resolve)
    with pytest.raises(EgressRefused, match="does not resolve"):
        check_url("https://nowhere.example/v1", ["*"], resolve=resolve)
    public = resolver({"teacher.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    assert check_url("https://teacher.example/v1", ["*"], resolve=public).host == "teacher.example"


def test_a_range_the_operator_allows_is_reachable() -> None:
    url = "http://10.1.2.3:8000/v1"
    assert check_url(url, [url], ["10.0.0.0/8"]).port == 8000
    with pytest.raises(EgressRefused, match="private"):
        check_url(url, [url], ["192.168.0.0/16"])


def test_the_allow_list_matches_scheme_host_port_and_path_prefix() -> None:
    allowed = ["https://93.184.216.34/openai"]
    assert check_url("https://93.184.216.34/openai/v1", allowed)
    assert check_url("https://93.184.216.34:443/openai", allowed)
    for other in (
        "http://93.184.216.34/openai",  # scheme
        "https://93.184.216.35/openai",  # host
        "https://93.184.216.34:8443/openai",  # port
        "https://93.184.216.34/openaiX",  # not a whole segment
        "https://93.184.216.34/",  # above it
    ):
        with pytest.raises(EgressRefused, match="not an allowed teacher endpoint"):
            check_url(other, allowed)
    with pytest.raises(EgressRefused, match="allows no per-request URL"):
        check_url("https://93.184.216.34/openai", [])


def test_a_bare_host_is_its_v1_root_as_the_teacher_client_sees_it() -> None:
    assert parse_base_url("http://Example.COM").api_root == "http://example.com/v1"
    assert parse_base_url("http://[::1]:8080/v1/").api_root == "http://[::1]:8080/v1"
    assert check_url("https://93.184.216.34", ["https://93.184.216.34/v1"])
