"""The SSRF guard's pure rules and its resolution: every address a host resolves to must be
public; a DNS answer that changes after the check (rebinding) is caught when connecting."""

from __future__ import annotations

import ipaddress
import logging

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
        ("2002:a00:1::1", "embeds 10.0.0.1 is a private"),  # 6to4 of 10.0.0.1
        ("2002:7f00:1::1", "embeds 127.0.0.1 is a loopback"),
        ("2002:a9fe:a9fe::", "embeds 169.254.169.254 is a link-local"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "embeds 10.0.0.1 is a private"),  # Teredo client
        ("2001:0:a00:1:8000:63bf:a247:27dd", "embeds 10.0.0.1 is a private"),  # Teredo server
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("2002:5db8:d822::1", None),  # 6to4 of 93.184.216.34, a public address
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
    assert (
        await destination_problem(url, False, mixed) == "hooks.example.com is not a public address"
    )
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
        with pytest.raises(
            DestinationRefused, match=r"hooks\.example\.com is not a public address"
        ):
            await client.post(url, content=b"{}")
    assert dns.asked == 2


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "127.0.0.1", "fd00::7", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe"],
)
async def test_what_a_name_resolves_to_is_not_told(
    address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The refusal is an oracle for the internal DNS unless it says only "not a public
    address"; which address, and why, goes to a debug log alone."""
    url = "https://intranet.corp.example/hook"
    with caplog.at_level(logging.INFO, logger="shared.notify.guard"):
        problem = await destination_problem(url, False, Rebinding([address]))
    assert problem == "intranet.corp.example is not a public address"
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="shared.notify.guard"):
        await destination_problem(url, False, Rebinding([address]))
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
