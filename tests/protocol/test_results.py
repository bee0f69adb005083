"""protocol.results: the Authorization header that proves a requester to fetch an on-chain result."""

from __future__ import annotations

import pytest

from ledger.keys import generate_signer
from protocol.results import result_auth_header, result_requester


def test_the_header_proves_its_signer_for_its_request_within_the_window() -> None:
    signer = generate_signer()
    header = result_auth_header(signer, 7, timestamp=1_000_000)
    assert result_requester(header, 7, now=1_000_000 + 300) == signer.address
    assert result_requester(header, 8, now=1_000_000) != signer.address
    assert result_requester(header, 7, now=1_000_000 + 301) is None


@pytest.mark.parametrize("value", ["Govshare \u00b2:0x00", "Govshare \u0661\u0662:0x00", "Govshare -1:0x00", "Govshare :0x00",
                                   "Bearer 1:0x00", "Govshare 1000000:0xzz", "Govshare 1000000", "Govshare 1000000:0x1234", ""])
def test_a_malformed_header_proves_no_one(value: str) -> None:
    """Superscript or Arabic-Indic digits pass str.isdigit() but not int(): they used to raise (a 500), and so did
    an empty or short signature."""
    assert result_requester(value, 7, now=1_000_000) is None
