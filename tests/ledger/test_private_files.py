"""Private-key files others may access are refused before they are read, as ssh refuses them:
keystores (``ledger.keys.load_keystore``) and TLS client keys (``ledger.tls``), with real files
and real ``chmod``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ledger.errors import InsecureKeyFile, KeystoreError
from ledger.keys import load_keystore, save_keystore, signer_from_key
from ledger.tls import ClientTls, client_tls_context
from tests.support.certificates import TestAuthority

# test key: ganache deterministic account, not a secret
GANACHE_KEY_0 = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
PASSWORD = "private-files-test"  # test password, not a secret

OPEN_MODES = [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601, 0o666, 0o777]
PRIVATE_MODES = [0o600, 0o400, 0o700]


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keystores")
    save_keystore(signer_from_key(GANACHE_KEY_0), directory / "k.json", PASSWORD, iterations=2)
    return directory


@pytest.mark.parametrize("mode", OPEN_MODES, ids=oct)
def test_a_keystore_others_may_access_is_refused_naming_the_file_and_the_fix(keystore_dir: Path, mode: int) -> None:
    path = keystore_dir / "k.json"
    path.chmod(mode)
    try:
        with pytest.raises(InsecureKeyFile) as refused:
            load_keystore(path, PASSWORD)
    finally:
        path.chmod(0o600)
    message = str(refused.value)
    assert str(path) in message and f"chmod 600 {path}" in message and f"{mode:04o}" in message
    assert isinstance(refused.value, KeystoreError)  # the CLI maps it as every keystore error
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # nothing was changed for the user


@pytest.mark.parametrize("mode", PRIVATE_MODES, ids=oct)
def test_a_keystore_only_its_owner_may_access_is_read(keystore_dir: Path, mode: int) -> None:
    path = keystore_dir / "k.json"
    path.chmod(mode)
    try:
        assert load_keystore(path, PASSWORD).address == signer_from_key(GANACHE_KEY_0).address
    finally:
        path.chmod(0o600)


def test_the_mode_of_a_symlinks_target_counts(keystore_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(keystore_dir / "k.json")  # a symlink's own mode is 0777 on Linux: its target's decides
    assert load_keystore(link, PASSWORD).address == signer_from_key(GANACHE_KEY_0).address
    (keystore_dir / "k.json").chmod(0o644)
    try:
        with pytest.raises(InsecureKeyFile, match="chmod 600"):
            load_keystore(link, PASSWORD)
    finally:
        (keystore_dir / "k.json").chmod(0o600)


def test_a_tls_client_key_others_may_read_is_refused(tmp_path: Path) -> None:
    authority = TestAuthority(tmp_path, "consortium")
    issued = authority.issue("oracle-client", server=False)
    assert client_tls_context(authority.ca_file, issued.cert_file, issued.key_file) is not None  # 0600: loaded
    issued.key_file.chmod(0o644)
    with pytest.raises(InsecureKeyFile, match=f"TLS client key file {issued.key_file} .*chmod 600 {issued.key_file}"):
        client_tls_context(authority.ca_file, issued.cert_file, issued.key_file)
    with pytest.raises(ValueError, match="chmod 600"):
        ClientTls(authority.ca_file, issued.cert_file, issued.key_file).check()
    # a certificate file that holds its key too: the key is read from it, so its mode counts
    combined = tmp_path / "combined.pem"
    combined.write_bytes(issued.cert_file.read_bytes() + issued.key_file.read_bytes())
    combined.chmod(0o640)
    with pytest.raises(InsecureKeyFile, match="combined.pem"):
        client_tls_context(None, combined)
    combined.chmod(0o600)
    assert client_tls_context(None, combined) is not None
