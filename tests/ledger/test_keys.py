"""ledger.keys: keystores round-trip, wrong passwords fail cleanly, keys never show up in text."""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

import ledger.keys as keys_module
from ledger.errors import KeystoreError, LedgerError
from ledger.keys import (
    PASSWORD_ENV_VAR,
    Signer,
    generate_signer,
    load_keystore,
    read_password,
    save_keystore,
    signer_from_key,
)

# test key: ganache deterministic account, not a secret
GANACHE_KEY_0 = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
GANACHE_ADDRESS_0 = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
# test key: ganache deterministic account, not a secret
GANACHE_KEY_1 = "0x6cbed15c793ce57650b9877cf6fa156fbef513c4e6134f022a85b1ffdd59b2a1"
GANACHE_ADDRESS_1 = "0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0"

PASSWORD = "correct horse 电池 staple"
FAST_SCRYPT = 2  # scrypt n for tests only; the default stays eth_account's n = 2**18


def key_spellings(key_hex: str) -> list[str]:
    bare = key_hex.removeprefix("0x")
    return [bare.lower(), bare.upper(), bare[:16].lower()]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def signer() -> Signer:
    return signer_from_key(GANACHE_KEY_0)


@pytest.fixture
def fast_save(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record the kdf arguments save_keystore passes, and run them with a cheap scrypt."""
    calls: list[dict[str, Any]] = []
    real_encrypt = Account.encrypt

    def encrypt(private_key: Any, password: str, kdf: Any = None, iterations: Any = None) -> dict[str, Any]:
        calls.append({"kdf": kdf, "iterations": iterations})
        return real_encrypt(private_key, password, kdf=kdf, iterations=iterations or FAST_SCRYPT)

    monkeypatch.setattr(keys_module.Account, "encrypt", encrypt)
    yield calls


# --- Signer -----------------------------------------------------------------------------------


def test_signer_from_ganache_key(signer: Signer) -> None:
    assert signer.address == GANACHE_ADDRESS_0
    assert signer_from_key(GANACHE_KEY_0.removeprefix("0x")).address == GANACHE_ADDRESS_0
    assert signer_from_key(bytes.fromhex(GANACHE_KEY_1[2:])).address == GANACHE_ADDRESS_1


def test_repr_and_str_show_address_not_key(signer: Signer, caplog: pytest.LogCaptureFixture) -> None:
    texts = [repr(signer), str(signer), f"{signer}", f"{signer!r}", repr([signer]), repr({"s": signer})]
    with caplog.at_level(logging.INFO):
        logging.getLogger("govshare.test").info("signing with %s / %r", signer, signer)
    texts.append(caplog.text)
    for text in texts:
        assert GANACHE_ADDRESS_0 in text
        assert_no_secret(text, *key_spellings(GANACHE_KEY_0))


def test_no_attribute_renders_the_key(signer: Signer) -> None:
    assert not hasattr(signer, "__dict__")
    assert not hasattr(signer, "key")
    assert not hasattr(signer, "private_key")
    for name in dir(signer):
        if name.startswith("_") or name == "account":
            continue
        value = getattr(signer, name)
        assert_no_secret(repr(value), *key_spellings(GANACHE_KEY_0))


def test_account_is_the_local_account_for_web3(signer: Signer) -> None:
    assert signer.account.address == GANACHE_ADDRESS_0
    assert signer.account.key.hex().removeprefix("0x") == GANACHE_KEY_0[2:]


def test_signer_cannot_be_pickled(signer: Signer) -> None:
    with pytest.raises(TypeError, match="private key"):
        pickle.dumps(signer)


def test_signer_equality_by_address(signer: Signer) -> None:
    assert signer == signer_from_key(GANACHE_KEY_0)
    assert signer != signer_from_key(GANACHE_KEY_1)
    assert len({signer, signer_from_key(GANACHE_KEY_0)}) == 1


def test_sign_transaction_recovers_to_address(signer: Signer) -> None:
    tx = {"to": GANACHE_ADDRESS_1, "value": 1, "gas": 21000, "gasPrice": 10**9, "nonce": 0, "chainId": 1337}
    signed = signer.sign_transaction(tx)
    assert Account.recover_transaction(signed.raw_transaction) == GANACHE_ADDRESS_0
    assert signed.raw_transaction == Account.sign_transaction(tx, GANACHE_KEY_0).raw_transaction


def test_sign_message_and_typed_data(signer: Signer) -> None:
    message = encode_defunct(text="govshare")
    assert Account.recover_message(message, signature=signer.sign_message(message).signature) == GANACHE_ADDRESS_0
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Query": [{"name": "grantId", "type": "uint64"}, {"name": "requestHash", "type": "bytes32"}],
        },
        "primaryType": "Query",
        "domain": {"name": "govshare", "chainId": 1337},
        "message": {"grantId": 7, "requestHash": b"\x01" * 32},
    }
    signed = signer.sign_typed_data(full_message=typed)
    recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signed.signature)
    assert recovered == GANACHE_ADDRESS_0


def test_generate_signer_is_fresh() -> None:
    a, b = generate_signer(), generate_signer()
    assert a.address != b.address
    assert a.address.startswith("0x") and len(a.address) == 42


@pytest.mark.parametrize("bad", ["0x" + "zz" * 32, "0x" + "00" * 32, "0x1234", b"\x00" * 31])
def test_invalid_key_raises_keystore_error_without_echo(bad: str | bytes) -> None:
    with pytest.raises(KeystoreError) as info:
        signer_from_key(bad)
    text = "".join(traceback.format_exception(info.value))
    shown = bad.hex() if isinstance(bad, bytes) else bad.removeprefix("0x")
    assert shown not in text


# --- keystores --------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path, signer: Signer) -> None:
    path = save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=FAST_SCRYPT)
    assert path == tmp_path / "k.json"
    keyfile = json.loads(path.read_text())
    assert keyfile["version"] == 3 and keyfile["crypto"]["kdf"] == "scrypt"
    assert_no_secret(path.read_text(), *key_spellings(GANACHE_KEY_0), PASSWORD)
    loaded = load_keystore(path, PASSWORD)
    assert loaded.address == GANACHE_ADDRESS_0
    assert loaded.account.key == signer.account.key


def test_round_trip_pbkdf2_and_raw_key(tmp_path: Path) -> None:
    path = save_keystore(GANACHE_KEY_1, tmp_path / "k.json", PASSWORD, kdf="pbkdf2", iterations=2)
    assert json.loads(path.read_text())["crypto"]["kdf"] == "pbkdf2"
    assert load_keystore(str(path), PASSWORD).address == GANACHE_ADDRESS_1


def test_default_kdf_is_strong_scrypt(tmp_path: Path, signer: Signer, fast_save: list[dict[str, Any]]) -> None:
    save_keystore(signer, tmp_path / "k.json", PASSWORD)
    assert fast_save == [{"kdf": "scrypt", "iterations": None}]  # None = eth_account's n = 2**18


def test_wrong_password(tmp_path: Path, signer: Signer) -> None:
    path = save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=FAST_SCRYPT)
    wrong = "not the password 123"
    with pytest.raises(KeystoreError) as info:
        load_keystore(path, wrong)
    assert isinstance(info.value, LedgerError)
    assert "wrong password" in str(info.value)
    text = "".join(traceback.format_exception(info.value))
    assert_no_secret(text, wrong, PASSWORD, *key_spellings(GANACHE_KEY_0))


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_file_mode_is_0600(tmp_path: Path, signer: Signer, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=FAST_SCRYPT)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        replaced = save_keystore(signer, path, PASSWORD, iterations=FAST_SCRYPT, overwrite=True)
        assert stat.S_IMODE(replaced.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_no_overwrite_unless_asked(tmp_path: Path, signer: Signer) -> None:
    path = save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=FAST_SCRYPT)
    before = path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        save_keystore(GANACHE_KEY_1, path, PASSWORD, iterations=FAST_SCRYPT)
    assert path.read_bytes() == before
    save_keystore(GANACHE_KEY_1, path, PASSWORD, iterations=FAST_SCRYPT, overwrite=True)
    assert load_keystore(path, PASSWORD).address == GANACHE_ADDRESS_1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]  # no temporary left behind


def test_save_preconditions(tmp_path: Path, signer: Signer) -> None:
    with pytest.raises(KeystoreError, match="password"):
        save_keystore(signer, tmp_path / "k.json", "", iterations=FAST_SCRYPT)
    with pytest.raises(KeystoreError, match="does not exist"):
        save_keystore(signer, tmp_path / "missing" / "k.json", PASSWORD, iterations=FAST_SCRYPT)
    with pytest.raises(KeystoreError, match="kdf"):
        save_keystore(signer, tmp_path / "k.json", PASSWORD, kdf="md5")  # type: ignore[arg-type]
    with pytest.raises(KeystoreError, match="iterations"):
        save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=3)  # scrypt n must be a power of 2
    assert not (tmp_path / "k.json").exists()


def test_load_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="cannot read"):
        load_keystore(tmp_path / "absent.json", PASSWORD)
    (tmp_path / "junk.json").write_text("not json")
    (tmp_path / "junk.json").chmod(0o600)  # private, as a keystore must be (else refused before it is read)
    with pytest.raises(KeystoreError, match="not JSON"):
        load_keystore(tmp_path / "junk.json", PASSWORD)
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "other.json").chmod(0o600)
    with pytest.raises(KeystoreError, match="not a Web3 Secret Storage"):
        load_keystore(tmp_path / "other.json", PASSWORD)


def test_load_rejects_address_mismatch(tmp_path: Path, signer: Signer) -> None:
    path = save_keystore(signer, tmp_path / "k.json", PASSWORD, iterations=FAST_SCRYPT)
    keyfile = json.loads(path.read_text())
    keyfile["address"] = GANACHE_ADDRESS_1[2:].lower()
    path.write_text(json.dumps(keyfile))
    with pytest.raises(KeystoreError, match="declares address"):
        load_keystore(path, PASSWORD)


# --- passwords --------------------------------------------------------------------------------


def test_read_password_from_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    assert read_password(path) == PASSWORD
    path.write_text(PASSWORD + "\r\n")
    assert read_password(str(path)) == PASSWORD
    path.write_text(" spaced \n\n")
    assert read_password(path) == " spaced \n"  # only one newline is removed, nothing else


def test_read_password_file_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pw"
    path.write_text("from-file")
    monkeypatch.setenv(PASSWORD_ENV_VAR, "from-env")
    assert read_password(path) == "from-file"
    assert read_password() == "from-env"
    assert read_password(None, environ={PASSWORD_ENV_VAR: "given"}) == "given"


def test_read_password_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV_VAR, raising=False)
    with pytest.raises(KeystoreError, match=PASSWORD_ENV_VAR):
        read_password()
    with pytest.raises(KeystoreError):
        read_password(environ={PASSWORD_ENV_VAR: ""})
    with pytest.raises(KeystoreError, match="cannot read password file"):
        read_password(tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KeystoreError, match="empty"):
        read_password(tmp_path / "empty")


def test_fast_eip191_signature_equals_eth_accounts() -> None:
    """The oracle's receipt signature (libsecp256k1 directly) is byte for byte eth_account's."""
    from eth_account.messages import encode_defunct

    from ledger.keys import generate_signer

    for i in range(20):
        signer = generate_signer()
        data = bytes([i]) * 32
        expected = bytes(signer.sign_message(encode_defunct(primitive=data)).signature)
        assert signer.sign_eip191_hash(data) == expected
    with pytest.raises(ValueError):
        signer.sign_eip191_hash(b"short")


def test_a_derived_key_is_the_keys_own_and_never_the_key() -> None:
    """Signer.derive_key: the same for the same key and label, different for another label or key,
    and not the private key itself (the outbox's seal key comes from it)."""
    from ledger.keys import generate_signer

    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")  # a public test key
    one, again, other = signer_from_key(key), signer_from_key(key), generate_signer()
    derived = one.derive_key(b"label")
    assert len(derived) == 32 and derived == again.derive_key(b"label") and derived != key
    assert derived != one.derive_key(b"another label") and derived != other.derive_key(b"label")
