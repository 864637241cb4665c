"""The SSRF guard's pure rules and its resolution: every address a host resolves to must be
public; a DNS answer that changes after the check (rebinding) is caught when connecting."""

from __future__ import annotations

import ipaddress

import pytest

from shared.notify.guard import (
    DestinationRefused,
    address_problem,
    destination_problem,
    guarded_client,
    url_problem,
)


class Rebinding:
    """A DNS that answers a public address first, then a private one (a rebinding attack)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers, self.asked = list(answers), 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.answers.pop(0)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not bound)
        ("::", "unspecified"),
        ("240.0.0.1", "240.0.0.1 is a"),  # reserved (Python counts it as private too)
        ("::ffff:10.0.0.1", "private"),
        ("100.64.0.1", "not a public address"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_only_public_addresses_pass(address: str, problem: str | None) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_the_url_alone() -> None:
    assert url_problem("https://hooks.slack.com/services/T/B/X", False) is None
    assert "https" in (url_problem("http://hooks.slack.com/x", False) or "")
    assert url_problem("http://hooks.slack.com/x", True) is None
    assert url_problem("https://10.0.0.1/x", True) is None
    assert "https://" in (url_problem("file:///etc/passwd", True) or "")
    assert "valid URL" in (url_problem("https://example.com:99999/", False) or "")


async def test_every_address_of_the_host_must_be_public() -> None:
    url = "https://hooks.example.com/x"
    assert await destination_problem(url, False, Rebinding(["93.184.216.34"])) is None
    mixed = Rebinding(["93.184.216.34", "10.1.2.3"])
    assert "10.1.2.3 is a private" in (await destination_problem(url, False, mixed) or "")
    assert "does not resolve" in (await destination_problem(url, False, Rebinding([])) or "")
    assert await destination_problem(url, True, Rebinding()) is None  # lifted: not even asked


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:1/hook",  # by DNS: 127.0.0.1
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:1/hook",
        "https://224.0.0.1/hook",
        "http://93.184.216.34/hook",  # plain http
    ],
)
async def test_the_connection_itself_is_refused(url: str) -> None:
    async with guarded_client(allow_private=False, timeout=5) as client:
        with pytest.raises(DestinationRefused):
            await client.post(url, content=b"{}")


async def test_a_host_that_rebinds_after_the_check_is_refused_when_connecting() -> None:
    dns = Rebinding(["93.184.216.34"], ["127.0.0.1"])
    url = "https://hooks.example.com/x"
    assert await destination_problem(url, False, dns) is None  # when the channel was saved
    async with guarded_client(allow_private=False, timeout=5, resolver=dns) as client:
        with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is a loopback"):
            await client.post(url, content=b"{}")
    assert dns.asked == 2
