"""On-chain requests: how their parameters and results are encrypted, and how a requester proves
who it is to fetch a result.

* The requester encrypts its parameters (UTF-8 JSON object of strings) to the provider oracle's
  public key (``GET /v1/identity``) with :mod:`protocol.ecies`, associated data = its own 20-byte
  address (:func:`params_associated_data`), and sends them in ``QueryRequests.requestQuery``.
* The oracle encrypts the answer (canonical JSON ``{"status", "records", "error", "reason",
  "receipt"}``) to the requester's public key named in the request, associated data = the request
  id as a 32-byte big-endian integer (:func:`result_associated_data`).
* ``GET /v1/results/{id}`` carries ``Authorization: Govshare <unix time>:<0x signature>``, the
  signature an EIP-191 ``personal_sign`` of :func:`result_auth_message` by the requester's key,
  accepted within :data:`RESULT_AUTH_WINDOW` seconds of the oracle's clock.
"""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import to_canonical_address

from ledger.keys import Signer

__all__ = [
    "RESULT_AUTH_SCHEME",
    "RESULT_AUTH_WINDOW",
    "params_associated_data",
    "result_associated_data",
    "result_auth_header",
    "result_auth_message",
    "result_requester",
]

#: Seconds a result-fetching signature stays valid either side of the oracle's clock.
RESULT_AUTH_WINDOW = 300
RESULT_AUTH_SCHEME = "Govshare"


def params_associated_data(requester: str) -> bytes:
    """Parameters are encrypted to the oracle bound to the requester's 20-byte address."""
    return to_canonical_address(requester)


def result_associated_data(request_id: int) -> bytes:
    """Results are encrypted to the requester bound to the request id (uint256, big-endian)."""
    return request_id.to_bytes(32, "big")


def result_auth_message(request_id: int, timestamp: int) -> str:
    """The text a requester signs (EIP-191) to fetch the result of ``request_id`` at ``timestamp``."""
    return f"govshare result {request_id} at {timestamp}"


def result_auth_header(signer: Signer, request_id: int, timestamp: int | None = None) -> str:
    """The ``Authorization`` header value for fetching the result of ``request_id``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = signer.sign_message(encode_defunct(text=result_auth_message(request_id, stamp))).signature
    return f"{RESULT_AUTH_SCHEME} {stamp}:0x{bytes(signature).hex()}"


def result_requester(header: str, request_id: int, *, now: float | None = None) -> str | None:
    """The account an ``Authorization`` header proves for ``request_id``, or None if it proves none
    (another scheme, a malformed value, a time outside the window, a bad signature)."""
    scheme, _, value = header.partition(" ")
    stamp, _, signature = value.partition(":")
    now = time.time() if now is None else now
    # ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses (a 500, not a 401)
    if scheme != RESULT_AUTH_SCHEME or not (stamp.isascii() and stamp.isdigit()) or abs(now - int(stamp)) > RESULT_AUTH_WINDOW:
        return None
    try:
        return Account.recover_message(encode_defunct(text=result_auth_message(request_id, int(stamp))), signature=signature)
    except (ValueError, TypeError, IndexError, BadSignature, ValidationError):  # e.g. an empty or short signature
        return None
