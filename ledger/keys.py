"""Signing keys: loaded from encrypted keystore files, never printed, logged or pickled.

A :class:`Signer` wraps an eth_account ``LocalAccount``; its ``repr``/``str`` show only the
address, and it has no attribute that renders the key. Passwords come from a file or from the
``GOVSHARE_KEY_PASSWORD`` environment variable (:func:`read_password`), never from a command-line
argument (visible to every user in the process list and kept in shell history). Error messages
never contain a key or a password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import SignableMessage
from eth_account.signers.local import LocalAccount
from eth_utils import is_same_address

from ledger.errors import KeystoreError, PasswordUnavailable
from ledger.hashing import keccak
from ledger.json_limits import JsonTooDeep, JsonTooLarge, read_json_file
from ledger.private_files import check_private_file

__all__ = [
    "PASSWORD_ENV_VAR",
    "Signer",
    "generate_signer",
    "load_keystore",
    "read_password",
    "save_keystore",
    "signer_from_key",
]

#: Largest keystore file read (a v3 keystore is under 1 KB).
MAX_KEYSTORE_BYTES = 64 * 1024

#: The environment variable :func:`read_password` falls back to.
PASSWORD_ENV_VAR = "GOVSHARE_KEY_PASSWORD"

Kdf = Literal["scrypt", "pbkdf2"]

try:
    from coincurve import PrivateKey as _CurveKey
except ImportError:  # pragma: no cover - coincurve is a declared dependency
    _CurveKey = None


class Signer:
    """An account that can sign, and that never shows its private key.

    ``repr``/``str`` give only the address. :attr:`account` hands the underlying ``LocalAccount``
    to web3 (e.g. as a signing middleware); that object does expose ``.key``, so do not log it.
    Pickling is refused so a key cannot land in a cache or a task queue by accident.
    """

    __slots__ = ("__account", "__curve_key")

    def __init__(self, account: LocalAccount) -> None:
        """Precondition: ``account`` is an eth_account ``LocalAccount``."""
        if not isinstance(account, LocalAccount):
            raise TypeError(f"Signer needs a LocalAccount, found {type(account).__name__}")
        self.__account = account
        self.__curve_key = None

    @property
    def address(self) -> str:
        """The checksummed address."""
        return self.__account.address

    @property
    def account(self) -> LocalAccount:
        """The underlying ``LocalAccount``, for web3 (it holds the key: never log it)."""
        return self.__account

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTransaction:
        """Sign a transaction dict (with ``chainId``, ``nonce``, gas fields, ...)."""
        return self.__account.sign_transaction(dict(tx))

    def sign_message(self, message: SignableMessage) -> SignedMessage:
        """Sign an EIP-191 message (``eth_account.messages.encode_defunct(...)`` etc.)."""
        return self.__account.sign_message(message)

    def sign_eip191_hash(self, data: bytes) -> bytes:
        """The 65-byte signature (r ‖ s ‖ v, v 27/28, low s) of the EIP-191 message whose body is the
        32 bytes ``data``: the same bytes as ``sign_message(encode_defunct(primitive=data))``, computed
        with libsecp256k1 directly (about a tenth of eth_account's cost, on the oracle's hot path)."""
        if len(data) != 32:
            raise ValueError("sign_eip191_hash signs exactly 32 bytes")
        digest = keccak(b"\x19Ethereum Signed Message:\n32" + data)
        if _CurveKey is None:  # pragma: no cover - coincurve is a declared dependency
            return bytes(self.__account.unsafe_sign_hash(digest).signature)
        if self.__curve_key is None:
            self.__curve_key = _CurveKey(bytes(self.__account.key))
        signature = self.__curve_key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((signature[64] + 27,))

    def derive_key(self, label: bytes) -> bytes:
        """A 32-byte secret for ``label``, derived from the private key (HMAC-SHA256 keyed with it):
        what the key's holder alone can recompute, e.g. to authenticate its own files at rest. The
        private key itself never leaves."""
        return hmac.new(bytes(self.__account.key), b"govshare derived key\x00" + label, hashlib.sha256).digest()

    def sign_typed_data(
        self,
        domain_data: dict[str, Any] | None = None,
        message_types: dict[str, Any] | None = None,
        message_data: dict[str, Any] | None = None,
        full_message: dict[str, Any] | None = None,
    ) -> SignedMessage:
        """Sign EIP-712 typed data; arguments as ``LocalAccount.sign_typed_data``."""
        return self.__account.sign_typed_data(
            domain_data=domain_data,
            message_types=message_types,
            message_data=message_data,
            full_message=full_message,
        )

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    def __str__(self) -> str:
        return self.address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signer) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Signer holds a private key and cannot be pickled")


def signer_from_key(private_key: str | bytes) -> Signer:
    """A signer for a raw private key (hex with or without ``0x``, or 32 bytes). Meant for tests and
    for importing a key once into a keystore; production code loads keystores.

    Raises :class:`KeystoreError` (without echoing the key) when it is not a valid secp256k1 key.
    """
    try:
        return Signer(Account.from_key(private_key))
    except (ValueError, TypeError):
        raise KeystoreError("not a valid secp256k1 private key (32 bytes, or 64 hex digits)") from None


def generate_signer() -> Signer:
    """A signer for a fresh key from the operating system's CSPRNG."""
    return Signer(Account.create())


def load_keystore(path: str | os.PathLike[str], password: str) -> Signer:
    """Decrypt the Web3 Secret Storage (v3) keystore at ``path``.

    Raises :class:`KeystoreError` when the file is missing or unreadable, not a keystore, the
    password is wrong, or the decrypted key does not match the file's ``address`` field; its
    :class:`~ledger.errors.InsecureKeyFile` when group or others may access the file (it is not
    read: ``chmod 600`` it, as ssh asks of a private key). The message names the file but never the
    password or the key.
    """
    path = Path(path)
    if not isinstance(password, str):
        raise TypeError(f"password must be str, found {type(password).__name__}")
    check_private_file(path, "keystore")
    try:
        keyfile = read_json_file(path, max_bytes=MAX_KEYSTORE_BYTES, max_depth=8, what=f"keystore {path}")
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc.strerror or type(exc).__name__}") from None
    except (JsonTooLarge, JsonTooDeep) as exc:
        raise KeystoreError(f"{exc}: not a keystore") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeystoreError(f"keystore {path} is not JSON") from None
    if not isinstance(keyfile, dict) or "crypto" not in keyfile and "Crypto" not in keyfile:
        raise KeystoreError(f"keystore {path} is not a Web3 Secret Storage (v3) keystore")
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError:  # eth-keyfile: "MAC mismatch" on a wrong password
        raise KeystoreError(f"cannot decrypt keystore {path}: wrong password or corrupted file") from None
    except (KeyError, TypeError, NotImplementedError):
        raise KeystoreError(f"cannot decrypt keystore {path}: malformed or unsupported keystore") from None
    signer = Signer(Account.from_key(key))
    declared = keyfile.get("address")
    if declared:
        try:
            same = is_same_address(declared, signer.address)
        except (ValueError, TypeError):
            same = False
        if not same:
            raise KeystoreError(
                f"keystore {path} declares address {declared!s:.64} but its key is for {signer.address}"
            )
    return signer


def save_keystore(
    signer_or_key: Signer | LocalAccount | str | bytes,
    path: str | os.PathLike[str],
    password: str,
    *,
    kdf: Kdf = "scrypt",
    iterations: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Encrypt the key into a v3 keystore at ``path`` with file mode 0600; returns the path.

    ``kdf``/``iterations`` go to ``Account.encrypt``; ``iterations=None`` keeps eth_account's strong
    default (scrypt n=2**18). Lower values are for tests only.

    Preconditions: ``password`` is a non-empty str; the parent directory exists; ``path`` does not
    exist unless ``overwrite=True`` (then it is replaced atomically). Raises :class:`KeystoreError`
    otherwise. A new file is created with mode 0600 from the start (never world-readable, even
    briefly).
    """
    path = Path(path)
    if not isinstance(password, str) or not password:
        raise KeystoreError("refusing to write a keystore without a password")
    if kdf not in ("scrypt", "pbkdf2"):
        raise KeystoreError(f"unsupported kdf {kdf!r}: use 'scrypt' or 'pbkdf2'")
    account = _as_account(signer_or_key)
    try:
        keyfile = Account.encrypt(account.key, password, kdf=kdf, iterations=iterations)
    except (ValueError, TypeError, OverflowError):
        raise KeystoreError(f"cannot encrypt keystore with kdf={kdf} iterations={iterations!r}") from None
    data = (json.dumps(keyfile, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if not path.parent.is_dir():
        raise KeystoreError(f"cannot write keystore {path}: directory {path.parent} does not exist")
    if overwrite:
        _replace_private(path, data)
    else:
        _create_private(path, data)
    return path


def read_password(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The keystore password: from the file at ``path`` when given, else from ``$GOVSHARE_KEY_PASSWORD``.

    A password file's single trailing newline (``\\n`` or ``\\r\\n``) is removed, nothing else.
    Pass the *path* on the command line, never the password. ``environ`` defaults to ``os.environ``.
    Raises :class:`ledger.errors.PasswordUnavailable` (a :class:`KeystoreError`) when the file cannot
    be read, or no password is found, or it is empty.
    """
    if path is not None:
        path = Path(path)
        try:
            password = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PasswordUnavailable(
                f"cannot read password file {path}: {exc.strerror or type(exc).__name__}"
            ) from None
        except UnicodeDecodeError:
            raise PasswordUnavailable(f"password file {path} is not UTF-8") from None
        if password.endswith("\r\n"):
            password = password[:-2]
        elif password.endswith("\n"):
            password = password[:-1]
        if not password:
            raise PasswordUnavailable(f"password file {path} is empty")
        return password
    env = os.environ if environ is None else environ
    password = env.get(PASSWORD_ENV_VAR)
    if not password:
        raise PasswordUnavailable(f"no keystore password: give a password file or set {PASSWORD_ENV_VAR}")
    return password


def _as_account(signer_or_key: Signer | LocalAccount | str | bytes) -> LocalAccount:
    if isinstance(signer_or_key, Signer):
        return signer_or_key.account
    if isinstance(signer_or_key, LocalAccount):
        return signer_or_key
    if isinstance(signer_or_key, (str, bytes)):
        return signer_from_key(signer_or_key).account
    raise TypeError(f"expected a Signer, LocalAccount or private key, found {type(signer_or_key).__name__}")


def _create_private(path: Path, data: bytes) -> None:
    """Create ``path`` exclusively with mode 0600 and write ``data``; fail if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"keystore {path} already exists; pass overwrite=True to replace it") from None
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        os.fchmod(fd, 0o600)  # in case the umask removed owner bits
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write keystore {path}: {exc.strerror or type(exc).__name__}") from None


def _replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a 0600 temporary file beside ``path`` and rename it over ``path``."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore {path}: {exc.strerror or type(exc).__name__}") from None
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write keystore {path}: {exc.strerror or type(exc).__name__}") from None
