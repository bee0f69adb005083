"""The one exception hierarchy of the ledger library.

Every refusal surfaces as a subclass of :class:`LedgerError`; a contract revert surfaces as
:class:`ContractRevert` carrying the contract's custom error *by name* with its decoded arguments.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Root of every error raised by govshare's ledger library."""


class CompilationError(LedgerError):
    """The Solidity compiler could not be found or refused the sources."""


class ManifestError(LedgerError, LookupError):
    """A deployment manifest is missing, malformed or for another chain."""


class KeystoreError(LedgerError):
    """A keystore file could not be read, written or decrypted."""


class PasswordUnavailable(KeystoreError):
    """No keystore password was given (no password file, no ``$GOVSHARE_KEY_PASSWORD``), or the
    password file named cannot be read or is empty: a usage error, not a wrong password."""


class InsecureKeyFile(KeystoreError, PermissionError):
    """A private-key file (a keystore, a TLS key) that group or others may read or write: refused
    before it is read, as ssh refuses such a key (``chmod 600`` it)."""


class ChainUnavailable(LedgerError, ConnectionError):
    """The JSON-RPC endpoint could not be reached."""


class TransactionFailed(LedgerError):
    """A transaction was mined but failed, or could not be sent, for a reason that is not a decoded revert."""


class NonceGap(TransactionFailed):
    """A transaction sent and not mined has a nonce past the sender's next one at the node, which
    will therefore never mine it: the chain no longer holds the transactions before it (a rollback
    or reorg). Its sender's nonce is to be read again from the node, and what it sent reconciled."""


class OutOfGas(TransactionFailed):
    """A transaction was mined and used all the gas it was given, and the same call succeeds with
    more: its gas limit was too low."""


class ContractRevert(LedgerError):
    """A contract refused a call with a custom error (or a panic / string reason).

    ``name`` is the Solidity error name (``AccessGrantsUnknownGrant``), ``args`` its decoded
    arguments by parameter name, and ``selector`` the 4-byte selector as hex.
    """

    def __init__(self, name: str, args: dict[str, Any], selector: str = "", raw: bytes = b"") -> None:
        self.name = name
        self.error_args = dict(args)
        self.selector = selector
        self.raw = raw
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in args.items())
        super().__init__(f"{name}({rendered})")

    @property  # type: ignore[override]
    def args(self) -> dict[str, Any]:  # the decoded arguments by name, not Exception's message tuple
        return self.error_args

    def __reduce__(self) -> tuple:
        return (type(self), (self.name, self.error_args, self.selector, self.raw))


def _render(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value)


class CanonicalizationError(LedgerError, ValueError):
    """A value cannot be encoded as canonical JSON (a float, a non-string key, a cycle, ...)."""


class HashLengthError(LedgerError, ValueError):
    """A hash (or salt) has the wrong length; the message says the expected and found lengths."""


class MerkleIndexError(LedgerError, IndexError):
    """A Merkle proof was asked for a leaf index outside the tree."""


class MerkleProofError(LedgerError, ValueError):
    """An inclusion proof does not lead to the expected root.

    ``expected`` is the root the proof was checked against, ``computed`` the root the proof yields.
    """

    def __init__(self, expected: bytes, computed: bytes) -> None:
        self.expected = bytes(expected)
        self.computed = bytes(computed)
        super().__init__(
            f"Merkle inclusion proof mismatch: expected root 0x{self.expected.hex()}, "
            f"computed root 0x{self.computed.hex()}"
        )

    def __reduce__(self) -> tuple[type[MerkleProofError], tuple[bytes, bytes]]:
        return (type(self), (self.expected, self.computed))
