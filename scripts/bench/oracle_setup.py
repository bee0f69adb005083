"""The oracle benchmarks' setup: a consortium on a fresh chain with SAMR's company dataset and a
grant to TAX, the oracle's TOML and process, and pre-signed request bodies (each used once)."""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from harness import PYTHON, Proc, wait_http  # noqa: E402

from devtools.devnet import dev_accounts  # noqa: E402
from devtools.sample_data import COMPANY_FIELDS, companies  # noqa: E402
from ledger.chain import Chain  # noqa: E402
from ledger.compiler import compile_contracts  # noqa: E402
from ledger.contracts.catalog import Classification  # noqa: E402
from ledger.deployment import Consortium, deploy_consortium  # noqa: E402
from ledger.keys import save_keystore  # noqa: E402
from requester.client import OracleClient  # noqa: E402
from tests.conftest import Members, admit_members  # noqa: E402
from tests.oracle.conftest import TAX_FIELDS, publish  # noqa: E402

DAY = 86_400


@dataclass
class Setup:
    consortium: Consortium
    members: Members
    dataset: int
    grant: int
    fields: int
    manifest: Path
    keystore: Path
    password_file: Path


def set_up_consortium(url: str, workdir: Path) -> Setup:
    chain = Chain(url, timeout=300.0, receipt_timeout=600.0)  # a benchmark waits out a busy node (30 s did not)
    accounts = dev_accounts(30)
    compilation = compile_contracts()
    deployment = deploy_consortium(chain, accounts[0], [a.address for a in accounts[:3]], 2, compilation)
    consortium = Consortium(chain, deployment, compilation)
    members = admit_members(consortium, accounts[:3], accounts)
    dataset = publish(consortium, members.samr, "企业登记信息", COMPANY_FIELDS, companies(), Classification.INTERNAL)
    mask = consortium.catalog.dataset(dataset).field_mask(TAX_FIELDS)
    quota, duration = 10**12, 3650 * DAY
    grant = consortium.grants.request(members.tax.operator, dataset, mask, "oracle load benchmark", duration, quota)
    consortium.grants.approve(members.samr.operator, grant, mask, duration, quota)
    manifest = deployment.save(workdir)
    password_file = workdir / "samr-oracle.password"
    password_file.write_text("benchmark-only\n")
    keystore = save_keystore(members.samr.oracle, workdir / "samr-oracle.json", "benchmark-only", iterations=2, overwrite=True)
    return Setup(consortium, members, dataset, grant, mask, manifest, keystore, password_file)


#: The oracle's head poll interval in the benchmark (``--head-poll-interval``).
HEAD_POLL_INTERVAL = 0.1


def write_config(workdir: Path, name: str, setup: Setup, rpc_url: str, api_url: str, port: int, mode: str,
                 outbox: Path, head_poll_interval: float = HEAD_POLL_INTERVAL) -> Path:
    """The oracle's TOML, as oracle/examples/samr-oracle.toml, with a long request deadline."""
    path = workdir / f"{name}.toml"
    path.write_text(f"""\
rpc_url = "{rpc_url}"
manifest = "{setup.manifest}"
department = "SAMR"
key_file = "{setup.keystore}"
password_file = "{setup.password_file}"
listen_host = "127.0.0.1"
listen_port = {port}
mode = "{mode}"
strict_timeout_seconds = 30.0
outbox = "{outbox}"
batch_max_records = 100
batch_max_age_seconds = 1.0
head_poll_interval_seconds = {head_poll_interval}
request_deadline_max_seconds = 3600

[masking.internal]
legal_representative = "keep:1:0"

[datasets.{setup.dataset}]
base_url = "{api_url}"
path = "/companies"
timeout_seconds = 2.0
params = ["company_id", "status"]
max_records = 100
fixed_params = {{ limit = "100" }}
""")
    return path


def start_oracle(workdir: Path, name: str, config: Path, port: int, *, env: dict[str, str] | None = None) -> Proc:
    """``govshare oracle serve --config CONFIG`` as a process of its own (``env``: extra variables)."""
    proc = Proc(name, [PYTHON, "-m", "cli.main", "oracle", "serve", "--config", str(config)], workdir, env=env)
    wait_http(f"http://127.0.0.1:{port}/v1/health", proc, timeout=120)
    return proc


class Bodies:
    """Pre-signed request bodies, each handed out once."""

    def __init__(self, setup: Setup, count: int) -> None:
        c = setup.consortium
        client = OracleClient("http://unused", c.chain.chain_id, c.deployment.addresses["QueryRequests"])
        ids = [r["company_id"] for r in companies()]
        rng = random.Random(7)
        self.lines = []
        for _ in range(count):
            body, _, _ = client.signed_body(setup.members.tax.operator, setup.members.tax.id, setup.dataset, setup.grant,
                                            setup.fields, {"company_id": rng.choice(ids)}, ttl=3500)
            self.lines.append(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
        client.close()
        self.next = 0

    def take(self, n: int) -> list[str]:
        if self.next + n > len(self.lines):
            raise RuntimeError(f"out of pre-signed bodies ({len(self.lines)}): raise --bodies")
        chunk = self.lines[self.next:self.next + n]
        self.next += n
        return chunk

    def remaining(self) -> int:
        return len(self.lines) - self.next


def direct_paths() -> list[str]:
    ids = [r["company_id"] for r in companies()]
    rng = random.Random(7)
    return [f"/companies?company_id={rng.choice(ids)}&limit=100" for _ in range(20_000)]
