"""The oracle's settings (oracle.config): the example files, defaults, and every refusal naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.contracts.catalog import Classification
from ledger.contracts.registry import DEFAULT_MAX_DECISION_AGE_BLOCKS
from ledger.errors import KeystoreError, LedgerError
from oracle.config import OracleConfig
from oracle.errors import ConfigError, UnknownDataset
from oracle.masking import MaskRule

EXAMPLES = Path(__file__).resolve().parents[2] / "oracle" / "examples"

BASE_TOP: dict[str, str] = {"rpc_url": '"http://127.0.0.1:8545"', "department": '"SAMR"', "key_file": '"keys/oracle.json"'}
BASE_DATASET: dict[str, str] = {"base_url": '"http://127.0.0.1:8101"', "path": '"/companies"', "params": '["company_id"]'}


def render(top: dict[str, Any] | None = None, dataset: dict[str, Any] | None = None, tail: str = "") -> str:
    """A config file: the base keys updated by ``top`` / ``dataset`` (a value of None drops the key)."""
    lines = [f"{k} = {v}" for k, v in {**BASE_TOP, **(top or {})}.items() if v is not None]
    lines.append("[datasets.1]")
    lines += [f"{k} = {v}" for k, v in {**BASE_DATASET, **(dataset or {})}.items() if v is not None]
    return "\n".join(lines) + "\n" + tail


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oracle.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_samr_example_loads() -> None:
    config = OracleConfig.load(EXAMPLES / "samr-oracle.toml")
    assert config.department == "SAMR" and config.mode == "fast" and config.rpc_url == "http://127.0.0.1:8545"
    assert config.key_file == EXAMPLES.resolve() / "keys" / "samr-oracle.json"
    assert config.manifest is None and config.password_file is None
    dataset = config.dataset(1)
    assert dataset.url == "http://127.0.0.1:8101/companies" and dataset.params == ("company_id", "status")
    assert dataset.fixed_params == {"limit": "100"} and dataset.max_records == 100
    assert config.masking[Classification.INTERNAL] == {"legal_representative": MaskRule("keep", 1, 0)}
    assert dataset.masking == {"registration_date": MaskRule("none")}


def test_psb_example_loads() -> None:
    config = OracleConfig.load(EXAMPLES / "psb-oracle.toml")
    assert config.department == "PSB" and config.mode == "strict" and config.listen_port == 8701
    assert config.strict_timeout_seconds == 30.0
    assert config.password_file == EXAMPLES.resolve() / "keys" / "psb-oracle.password"
    assert set(config.datasets) == {2} and config.dataset(2).params == ("id_number",)
    rules = config.masking_rules(2, Classification.SENSITIVE)
    assert rules["id_number"] == MaskRule("keep", 6, 4) and rules["birth_date"] == MaskRule("year")
    assert config.masking_rules(2, Classification.PUBLIC) == {}


def test_defaults(tmp_path: Path) -> None:
    config = OracleConfig.load(write(tmp_path, render()))
    assert (config.listen_host, config.listen_port, config.mode, config.anchoring) == ("127.0.0.1", 8700, "fast", "process")
    assert config.outbox == tmp_path.resolve() / "oracle-outbox.sqlite"
    assert config.key_file == tmp_path.resolve() / "keys" / "oracle.json"
    assert (config.batch_max_records, config.batch_max_age_seconds, config.head_poll_interval_seconds) == (100, 2.0, 0.0)
    assert config.batch_max_in_flight == 3
    assert (config.max_request_bytes, config.request_deadline_max_seconds) == (65536, 300)
    assert config.strict_timeout_seconds == 30.0 and config.chain_block_seconds == 2.0
    assert config.manifest is None and config.password_file is None and config.masking == {}
    dataset = config.dataset(1)
    assert (dataset.timeout_seconds, dataset.max_response_bytes, dataset.max_records) == (2.0, 1048576, 100)
    assert dataset.fixed_params == {} and dataset.masking == {}


def test_paths_absolute_relative_and_home(tmp_path: Path) -> None:
    text = render({"manifest": '"/srv/deployments/1337.json"', "outbox": '"state/outbox.sqlite"', "password_file": '"~/pw"'})
    config = OracleConfig.load(write(tmp_path, text))
    assert config.manifest == Path("/srv/deployments/1337.json")
    assert config.outbox == tmp_path.resolve() / "state" / "outbox.sqlite"
    assert config.password_file == Path("~/pw").expanduser()


def test_all_settings_and_overrides(tmp_path: Path) -> None:
    text = render(
        {"mode": '"strict"', "anchoring": '"thread"', "batch_max_records": "500", "batch_max_age_seconds": "1", "head_poll_interval_seconds": "0.5",
         "batch_max_in_flight": "1", "listen_host": '"0.0.0.0"', "listen_port": "9000", "max_request_bytes": "4096", "request_deadline_max_seconds": "60"},
        {"timeout_seconds": "0.5", "max_response_bytes": "1000", "max_records": "5", "params": '["company_id", "status"]',
         "fixed_params": '{ limit = 5 }', "base_url": '"http://gw.example:8080/samr/"'},
        '[datasets.1.masking]\nname = "keep:2:0"\n[datasets.7]\nbase_url = "https://x.example"\npath = "/y"\nparams = ["q"]\n'
        '[masking.sensitive]\nname = "redact"\nlegal_representative = "keep:1:0"\n',
    )
    config = OracleConfig.load(write(tmp_path, text))
    assert config.mode == "strict" and config.batch_max_records == 500 and config.batch_max_age_seconds == 1.0
    assert config.anchoring == "thread" and config.batch_max_in_flight == 1
    assert config.head_poll_interval_seconds == 0.5 and config.listen_port == 9000
    assert set(config.datasets) == {1, 7}
    dataset = config.dataset(1)
    assert dataset.url == "http://gw.example:8080/samr/companies" and dataset.fixed_params == {"limit": "5"}
    assert config.masking_rules(1, Classification.SENSITIVE) == {
        "name": MaskRule("keep", 2, 0), "legal_representative": MaskRule("keep", 1, 0)
    }
    assert config.masking_rules(7, Classification.SENSITIVE) == {
        "name": MaskRule("redact"), "legal_representative": MaskRule("keep", 1, 0)
    }
    with pytest.raises(UnknownDataset):
        config.dataset(2)


def test_password_from_file_or_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    with_file = OracleConfig.load(write(tmp_path, render({"password_file": '"pw"'})))
    assert with_file.password(environ={}) == "s3cret"
    without = OracleConfig.load(write(tmp_path, render()))
    assert without.password(environ={"GOVSHARE_KEY_PASSWORD": "from-env"}) == "from-env"
    with pytest.raises(KeystoreError):
        without.password(environ={})


INVALID: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, str, str]] = [
    # (case, top, dataset, tail, the key the error must name)
    ("unknown mode", {"mode": '"turbo"'}, None, "", "mode"),
    ("mode not a string", {"mode": "1"}, None, "", "mode"),
    ("unknown anchoring", {"anchoring": '"elsewhere"'}, None, "", "anchoring"),
    ("batch 0", {"batch_max_records": "0"}, None, "", "batch_max_records"),
    ("batch 501", {"batch_max_records": "501"}, None, "", "batch_max_records"),
    ("batch a string", {"batch_max_records": '"100"'}, None, "", "batch_max_records"),
    ("batch a boolean", {"batch_max_records": "true"}, None, "", "batch_max_records"),
    ("batch a float", {"batch_max_records": "10.0"}, None, "", "batch_max_records"),
    ("in flight 0", {"batch_max_in_flight": "0"}, None, "", "batch_max_in_flight"),
    ("in flight 17", {"batch_max_in_flight": "17"}, None, "", "batch_max_in_flight"),
    ("password in the file", {"password": '"hunter2"'}, None, "", "password"),
    ("key_password in the file", {"key_password": '"hunter2"'}, None, "", "key_password"),
    ("password in a dataset", None, {"password": '"hunter2"'}, "", "datasets.1.password"),
    ("unknown key", {"rpc_ulr": '"http://x"'}, None, "", "rpc_ulr"),
    ("unknown dataset key", None, {"timeout": "2"}, "", "datasets.1.timeout"),
    ("no rpc_url", {"rpc_url": None}, None, "", "rpc_url"),
    ("rpc_url not http", {"rpc_url": '"ws://127.0.0.1:8546"'}, None, "", "rpc_url"),
    ("no department", {"department": None}, None, "", "department"),
    ("empty department", {"department": '""'}, None, "", "department"),
    ("department over 32 bytes", {"department": '"' + "部" * 11 + '"'}, None, "", "department"),
    ("no key_file", {"key_file": None}, None, "", "key_file"),
    ("port 0", {"listen_port": "0"}, None, "", "listen_port"),
    ("port 70000", {"listen_port": "70000"}, None, "", "listen_port"),
    ("batch age 0", {"batch_max_age_seconds": "0"}, None, "", "batch_max_age_seconds"),
    ("batch age nan", {"batch_max_age_seconds": "nan"}, None, "", "batch_max_age_seconds"),
    ("head poll negative", {"head_poll_interval_seconds": "-1.0"}, None, "", "head_poll_interval_seconds"),
    ("request bytes tiny", {"max_request_bytes": "10"}, None, "", "max_request_bytes"),
    ("deadline 0", {"request_deadline_max_seconds": "0"}, None, "", "request_deadline_max_seconds"),
    ("strict timeout 0", {"strict_timeout_seconds": "0"}, None, "", "strict_timeout_seconds"),
    ("block period 0", {"chain_block_seconds": "0"}, None, "", "chain_block_seconds"),
    ("block period a string", {"chain_block_seconds": '"2s"'}, None, "", "chain_block_seconds"),
    ("outbox not a string", {"outbox": "3"}, None, "", "outbox"),
    ("dataset without base_url", None, {"base_url": None}, "", "datasets.1.base_url"),
    ("base_url ftp", None, {"base_url": '"ftp://127.0.0.1"'}, "", "datasets.1.base_url"),
    ("base_url with a query", None, {"base_url": '"http://127.0.0.1:8101/?a=1"'}, "", "datasets.1.base_url"),
    ("base_url with credentials", None, {"base_url": '"http://u:p@127.0.0.1:8101"'}, "", "datasets.1.base_url"),
    ("base_url bad port", None, {"base_url": '"http://127.0.0.1:99999"'}, "", "datasets.1.base_url"),
    ("dataset without path", None, {"path": None}, "", "datasets.1.path"),
    ("path without slash", None, {"path": '"companies"'}, "", "datasets.1.path"),
    ("path with a query", None, {"path": '"/companies?x=1"'}, "", "datasets.1.path"),
    ("dataset without params", None, {"params": None}, "", "datasets.1.params"),
    ("params empty", None, {"params": "[]"}, "", "datasets.1.params"),
    ("params not strings", None, {"params": "[1]"}, "", "datasets.1.params"),
    ("params twice", None, {"params": '["a", "a"]'}, "", "datasets.1.params"),
    ("param with a space", None, {"params": '["a b"]'}, "", "datasets.1.params"),
    ("timeout 0", None, {"timeout_seconds": "0"}, "", "datasets.1.timeout_seconds"),
    ("timeout negative", None, {"timeout_seconds": "-2.0"}, "", "datasets.1.timeout_seconds"),
    ("response bytes 0", None, {"max_response_bytes": "0"}, "", "datasets.1.max_response_bytes"),
    ("max records 0", None, {"max_records": "0"}, "", "datasets.1.max_records"),
    ("fixed param also a param", None, {"fixed_params": '{ company_id = "x" }'}, "", "datasets.1.fixed_params.company_id"),
    ("fixed param a list", None, {"fixed_params": "{ limit = [1] }"}, "", "datasets.1.fixed_params.limit"),
    ("bad classification rule", None, None, '[masking.sensitive]\nid_number = "keep:6"\n', "masking.sensitive.id_number"),
    ("rule not a string", None, None, "[masking.secret]\nname = 3\n", "masking.secret.name"),
    ("bad dataset rule", None, None, '[datasets.1.masking]\nname = "hide"\n', "datasets.1.masking.name"),
    ("unknown classification", None, None, '[masking.top_secret]\nname = "redact"\n', "masking.top_secret"),
    ("masking not a table", {"masking": '"redact"'}, None, "", "masking"),
    ("dataset id not a number", None, None, '[datasets.companies]\nbase_url = "http://x"\npath = "/c"\nparams = ["a"]\n', "datasets.companies"),
    ("dataset id 0", None, None, '[datasets.0]\nbase_url = "http://x"\npath = "/c"\nparams = ["a"]\n', "datasets.0"),
    ("dataset id leading zero", None, None, '[datasets.01]\nbase_url = "http://x"\npath = "/c"\nparams = ["a"]\n', "datasets.01"),
]


@pytest.mark.parametrize(("top", "dataset", "tail", "key"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_settings_name_the_key(
    tmp_path: Path, top: dict[str, Any] | None, dataset: dict[str, Any] | None, tail: str, key: str
) -> None:
    path = write(tmp_path, render(top, dataset, tail))
    with pytest.raises(ConfigError) as caught:
        OracleConfig.load(path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LedgerError)


def test_batching_limits_are_checked_against_the_decision_age_bound(tmp_path: Path) -> None:
    """The default batching on 2 s blocks fits the deployments' default bound (150 blocks) with a 120 s
    receipt timeout; limits that do not are refused naming the settings and the numbers."""
    config = OracleConfig.load(write(tmp_path, render()))
    assert config.decision_age_blocks_needed(120.0) == 126  # ceil((2 + 240 + 1) / 2) + 3 in flight + 1
    config.check_decision_age_bound(DEFAULT_MAX_DECISION_AGE_BLOCKS, 120.0)
    config.check_decision_age_bound(126, 120.0)
    with pytest.raises(ConfigError) as caught:
        config.check_decision_age_bound(125, 120.0)
    assert caught.value.key == "batch_max_age_seconds"
    assert "up to 126 blocks" in str(caught.value) and "the consortium allows 125" in str(caught.value)
    fast_chain = OracleConfig.load(write(tmp_path, render({"chain_block_seconds": "1"})))
    with pytest.raises(ConfigError, match="chain_block_seconds 1, a served record may be anchored up to 247 blocks"):
        fast_chain.check_decision_age_bound(DEFAULT_MAX_DECISION_AGE_BLOCKS, 120.0)
    fast_chain.check_decision_age_bound(DEFAULT_MAX_DECISION_AGE_BLOCKS, 50.0)  # a shorter receipt timeout fits


def test_no_datasets(tmp_path: Path) -> None:
    text = "\n".join(f"{k} = {v}" for k, v in BASE_TOP.items()) + "\n"
    with pytest.raises(ConfigError) as caught:
        OracleConfig.load(write(tmp_path, text))
    assert caught.value.key == "datasets"
    with pytest.raises(ConfigError) as caught:
        OracleConfig.load(write(tmp_path, text + "datasets = {}\n"))
    assert caught.value.key == "datasets"


def test_unreadable_or_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file") as caught:
        OracleConfig.load(tmp_path / "missing.toml")
    assert caught.value.key == ""
    with pytest.raises(ConfigError, match="not valid TOML"):
        OracleConfig.load(write(tmp_path, "rpc_url = \n"))
    with pytest.raises(ConfigError, match="not valid TOML"):  # TOML itself refuses a key twice
        OracleConfig.load(write(tmp_path, render() + "[datasets.1]\npath = \"/x\"\n"))


def test_config_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("a.toml", "mode", "bad")))
    assert (error.path, error.key, error.problem, str(error)) == ("a.toml", "mode", "bad", "a.toml: mode: bad")


def test_an_https_source_takes_its_ca_and_a_client_certificate(tmp_path: Path) -> None:
    """Paths relative to the config file; loaded once at start, so a mistake names its key then."""
    from tests.support.certificates import TestAuthority

    (tmp_path / "tls").mkdir()
    authority = TestAuthority(tmp_path / "tls", "department")
    issued = authority.issue("samr-oracle", server=False)
    files = {"ca_file": '"tls/department-ca.pem"', "client_cert_file": '"tls/samr-oracle.pem"',
             "client_key_file": '"tls/samr-oracle-key.pem"'}
    https = {"base_url": '"https://registry.samr.example"'}
    config = OracleConfig.load(write(tmp_path, render(dataset={**https, **files})))
    dataset = config.datasets[1]
    assert (dataset.ca_file, dataset.client_cert_file, dataset.client_key_file) == (
        authority.ca_file, issued.cert_file, issued.key_file)
    assert OracleConfig.load(write(tmp_path, render(dataset={**https, "ca_file": files["ca_file"]}))).datasets[1].client_cert_file is None
    assert OracleConfig.load(write(tmp_path, render(dataset=https))).datasets[1].ca_file is None  # the system's trust

    (tmp_path / "tls" / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nhunter2\n-----END CERTIFICATE-----\n")
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(issued.key_file.read_bytes(), None)
    (tmp_path / "tls" / "encrypted-key.pem").write_bytes(key.private_bytes(  # refused, never prompted for
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"hunter2")))
    (tmp_path / "tls" / "encrypted-key.pem").chmod(0o600)
    (tmp_path / "tls" / "ca-as-key.pem").write_bytes(authority.ca_file.read_bytes())
    (tmp_path / "tls" / "ca-as-key.pem").chmod(0o600)
    (tmp_path / "tls" / "readable-key.pem").write_bytes(issued.key_file.read_bytes())
    (tmp_path / "tls" / "readable-key.pem").chmod(0o640)
    refused = [
        ({"ca_file": files["ca_file"]}, "datasets.1.ca_file", "is for an https source"),  # base_url stays http
        ({**https, "client_cert_file": files["client_cert_file"]}, "datasets.1.client_key_file", "needs its key"),
        ({**https, "client_key_file": files["client_key_file"]}, "datasets.1.client_cert_file", "needs its key"),
        ({**https, "ca_file": '"tls/missing.pem"'}, "datasets.1.ca_file", "no such file"),
        ({**https, "ca_file": '"tls/garbage.pem"'}, "datasets.1.ca_file", "cannot be loaded as PEM certificates"),
        ({**https, "client_cert_file": files["client_cert_file"], "client_key_file": '"tls/ca-as-key.pem"'},
         "datasets.1.client_cert_file", "matching unencrypted key"),  # a certificate where the key should be
        ({**https, "client_cert_file": files["client_cert_file"], "client_key_file": '"tls/readable-key.pem"'},
         "datasets.1.client_key_file", "accessible by group or others (mode 0640)"),  # as ssh refuses it
        ({**https, "client_cert_file": files["client_cert_file"], "client_key_file": '"tls/encrypted-key.pem"'},
         "datasets.1.client_cert_file", "matching unencrypted key"),
        ({**https, "client_cert_file": files["client_cert_file"], "client_key_file": '"tls/department-ca.pem"',
          "ca_file": '"tls/garbage.pem"'}, "datasets.1.ca_file", "cannot be loaded"),
    ]
    for dataset_keys, key, problem in refused:
        with pytest.raises(ConfigError) as caught:
            OracleConfig.load(write(tmp_path, render(dataset=dataset_keys)))
        assert caught.value.key == key and problem in str(caught.value), str(caught.value)
        assert "hunter2" not in str(caught.value)


def test_an_https_chain_node_takes_its_ca(tmp_path: Path) -> None:
    from tests.support.certificates import TestAuthority

    authority = TestAuthority(tmp_path, "consortium")
    https = {"rpc_url": '"https://besu.consortium.example:8545"'}
    config = OracleConfig.load(write(tmp_path, render({**https, "rpc_ca_file": '"consortium-ca.pem"'})))
    assert config.rpc_ca_file == authority.ca_file
    assert OracleConfig.load(write(tmp_path, render(https))).rpc_ca_file is None
    (tmp_path / "not-pem.pem").write_text("hunter2\n")
    for top, problem in [({"rpc_ca_file": '"consortium-ca.pem"'}, "is for an https chain node"),
                         ({**https, "rpc_ca_file": '"missing.pem"'}, "no such file"),
                         ({**https, "rpc_ca_file": '"not-pem.pem"'}, "cannot be loaded as PEM certificates")]:
        with pytest.raises(ConfigError) as caught:
            OracleConfig.load(write(tmp_path, render(top)))
        assert caught.value.key == "rpc_ca_file" and problem in str(caught.value), str(caught.value)
        assert "hunter2" not in str(caught.value)


def test_the_oracle_serves_https_with_optional_client_certificates(tmp_path: Path) -> None:
    """``tls_*``: both files, loaded at start; a client CA, and requiring its certificates, optional."""
    from serving.tls import ServerTls
    from tests.support.certificates import TestAuthority

    authority, clients = TestAuthority(tmp_path, "samr"), TestAuthority(tmp_path, "consortium-clients")
    issued = authority.issue("samr-oracle-server", server=True)
    served = {"tls_cert_file": '"samr-oracle-server.pem"', "tls_key_file": '"samr-oracle-server-key.pem"'}
    assert OracleConfig.load(write(tmp_path, render())).tls is None  # plain http by default
    assert OracleConfig.load(write(tmp_path, render(served))).tls == ServerTls(issued.cert_file, issued.key_file)
    mutual = {**served, "tls_client_ca_file": '"consortium-clients-ca.pem"', "tls_require_client_cert": "true"}
    assert OracleConfig.load(write(tmp_path, render(mutual))).tls == ServerTls(issued.cert_file, issued.key_file,
                                                                                clients.ca_file, True)
    (tmp_path / "readable-key.pem").write_bytes(issued.key_file.read_bytes())
    (tmp_path / "readable-key.pem").chmod(0o644)
    (tmp_path / "not-pem.pem").write_text("hunter2\n")
    (tmp_path / "other-key.pem").write_bytes(authority.issue("other", server=True).key_file.read_bytes())
    (tmp_path / "other-key.pem").chmod(0o600)
    refused = [
        ({"tls_cert_file": served["tls_cert_file"]}, "tls_key_file", "is required with the other"),
        ({"tls_key_file": served["tls_key_file"]}, "tls_cert_file", "is required with the other"),
        ({"tls_client_ca_file": '"consortium-clients-ca.pem"'}, "tls_client_ca_file", "needs tls_cert_file"),
        ({**served, "tls_require_client_cert": "true"}, "tls_require_client_cert", "needs tls_client_ca_file"),
        ({**served, "tls_require_client_cert": '"yes"'}, "tls_require_client_cert", "must be true or false"),
        ({**served, "tls_key_file": '"readable-key.pem"'}, "tls_key_file", "accessible by group or others (mode 0644)"),
        ({**served, "tls_key_file": '"missing-key.pem"'}, "tls_key_file", "does not exist"),
        ({**served, "tls_key_file": '"other-key.pem"'}, "tls_cert_file", "matching unencrypted key"),
        ({**served, "tls_cert_file": '"not-pem.pem"'}, "tls_cert_file", "cannot be loaded"),
        ({**served, "tls_client_ca_file": '"not-pem.pem"'}, "tls_client_ca_file", "cannot be loaded as PEM certificates"),
        ({**served, "tls_client_ca_file": '"missing.pem"'}, "tls_client_ca_file", "does not exist"),
    ]
    for top, key, problem in refused:
        with pytest.raises(ConfigError) as caught:
            OracleConfig.load(write(tmp_path, render(top)))
        assert caught.value.key == key and problem in str(caught.value), str(caught.value)
        assert "hunter2" not in str(caught.value)


def test_an_https_chain_node_takes_a_client_certificate(tmp_path: Path) -> None:
    from ledger.tls import ClientTls
    from tests.support.certificates import TestAuthority

    authority = TestAuthority(tmp_path, "consortium")
    issued = authority.issue("samr-oracle-client", server=False)
    https = {"rpc_url": '"https://besu.consortium.example:8545"', "rpc_ca_file": '"consortium-ca.pem"'}
    client = {"rpc_client_cert_file": '"samr-oracle-client.pem"', "rpc_client_key_file": '"samr-oracle-client-key.pem"'}
    config = OracleConfig.load(write(tmp_path, render({**https, **client})))
    assert config.rpc_tls == ClientTls(authority.ca_file, issued.cert_file, issued.key_file)
    assert OracleConfig.load(write(tmp_path, render())).rpc_tls is None
    (tmp_path / "readable-key.pem").write_bytes(issued.key_file.read_bytes())
    (tmp_path / "readable-key.pem").chmod(0o640)
    refused = [
        (client, "rpc_client_cert_file", "is for an https chain node"),
        ({**https, "rpc_client_cert_file": client["rpc_client_cert_file"]}, "rpc_client_key_file", "needs its key"),
        ({**https, **client, "rpc_client_key_file": '"readable-key.pem"'}, "rpc_client_key_file", "chmod 600"),
        ({**https, **client, "rpc_client_key_file": '"consortium-ca.pem"'}, "rpc_client_key_file", "accessible by group"),
        ({**https, **client, "rpc_client_cert_file": '"missing.pem"'}, "rpc_client_cert_file", "no such file"),
    ]
    for top, key, problem in refused:
        with pytest.raises(ConfigError) as caught:
            OracleConfig.load(write(tmp_path, render(top)))
        assert caught.value.key == key and problem in str(caught.value), str(caught.value)


def test_a_keystore_others_may_read_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "oracle.json").write_text("{}")
    (tmp_path / "keys" / "oracle.json").chmod(0o604)
    with pytest.raises(ConfigError) as caught:
        OracleConfig.load(write(tmp_path, render()))
    assert caught.value.key == "key_file" and "mode 0604" in str(caught.value) and "chmod 600" in str(caught.value)
    (tmp_path / "keys" / "oracle.json").chmod(0o600)
    assert OracleConfig.load(write(tmp_path, render())).key_file == tmp_path / "keys" / "oracle.json"


def test_chain_timeouts_are_settings(tmp_path: Path) -> None:
    default = OracleConfig.load(write(tmp_path, render()))
    assert (default.rpc_timeout_seconds, default.rpc_receipt_timeout_seconds, default.batch_stuck_after_seconds) == (30.0, 120.0, 15.0)
    slow = OracleConfig.load(write(tmp_path, render({"rpc_timeout_seconds": "90", "rpc_receipt_timeout_seconds": "600",
                                                     "batch_stuck_after_seconds": "4.5"})))
    assert (slow.rpc_timeout_seconds, slow.rpc_receipt_timeout_seconds, slow.batch_stuck_after_seconds) == (90.0, 600.0, 4.5)
    assert default.batch_chain_check_seconds == 10.0  # the look for records the chain lost (oracle.chain_rollback)
    assert OracleConfig.load(write(tmp_path, render({"batch_chain_check_seconds": "2.5"}))).batch_chain_check_seconds == 2.5
    with pytest.raises(ConfigError, match="batch_chain_check_seconds"):
        OracleConfig.load(write(tmp_path, render({"batch_chain_check_seconds": "0"})))
    with pytest.raises(ConfigError, match="rpc_timeout_seconds"):
        OracleConfig.load(write(tmp_path, render({"rpc_timeout_seconds": "0"})))
