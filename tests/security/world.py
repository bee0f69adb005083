"""The system the bad-input catalogue attacks, built once for the module: the session's ganache with
the sample consortium (four departments admitted by committee vote), SAMR's datasets and grants in
every state a case needs, SAMR's oracle over real https in front of the sample company registry, TAX's
API service over real https (holding TAX's operator key, sending queries to SAMR's oracle), and the
manifest, keystores and environment the ``govshare`` CLI runs with as a subprocess.

Both services serve mutual TLS as a deployment would (``serving.tls``): their certificates from a
department CA, and only clients holding a certificate of the consortium's client CA get past the
handshake (the world's own clients, and the API toward the oracle, hold one). Both count requests per
account (``ORACLE_RATE_LIMIT``, ``API_RATE_LIMIT``: per hour, above what the other cases send, so
that only the rate-limit cases, spending an account of their own, reach them). The API reads its
bearer tokens from its settings (one of them expired) and from a tokens file (revoked while it runs),
and closes idle and slow connections after ``API_IDLE_SECONDS``/``API_REQUEST_SECONDS``.

Keys are ganache's public deterministic dev keys and a test password, and the certificates are made
for the module: test keys, not secrets.
"""

from __future__ import annotations

import datetime
import re
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.app import create_app
from api.settings import ApiSettings, ServingSettings, TokenBinding, token_sha256
from devtools.devnet import GanacheNode, free_port
from devtools.sample_data import COMPANY_FIELDS, companies
from ledger.chain import Chain
from ledger.compiler import CompilationResult
from ledger.contracts.audit_log import AuditRecord
from ledger.contracts.catalog import Classification, UpdateFrequency
from ledger.deployment import Consortium
from ledger.keys import Signer, save_keystore
from oracle.config import DatasetConfig
from oracle.outbox_file import OutboxRecord
from protocol.query import SignedQuery
from serving import ServerThread
from serving.tls import ServerTls
from tests.conftest import Members, Template
from tests.oracle.conftest import TAX_FIELDS, RunningOracle, oracle_config, publish, start_oracle
from tests.support.certificates import IssuedCertificate, TestAuthority, client_context
from tests.support.cli import cli_env

DAY = 86_400
CLI_PASSWORD = "correct horse battery staple"  # test password of the test keystores
API_MAX_BODY = 64 * 1024  # the API's body limit in this world (the default is 16 MiB)
#: Per account and hour: more than any account but the rate-limit cases' own is counted for in the
#: module (TAX's operator: 23 signed queries at the oracle and 15 authenticated requests at the API).
ORACLE_RATE_LIMIT_COUNT = API_RATE_LIMIT_COUNT = 60
ORACLE_RATE_LIMIT = f"{ORACLE_RATE_LIMIT_COUNT}/hour"
API_RATE_LIMIT = f"{API_RATE_LIMIT_COUNT}/hour"
API_IDLE_SECONDS = 1.0  # the API closes a connection that sends nothing for this long (default 5 s)
API_REQUEST_SECONDS = 2.0  # and one whose request is not whole this long after it began (default 30 s)
_MALFORMED = re.compile(r"^govshare_oracle_malformed_queries_total (\S+)$", re.M)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as a case sees it."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class World:
    """Everything the cases reach, by name (datasets, grants, accounts)."""

    consortium: Consortium
    members: Members
    oracle: RunningOracle
    api: ServerThread
    tokens: dict[str, str]  # account name -> its bearer token at TAX's API (random, this module only)
    datasets: dict[str, int]
    grants: dict[str, int]
    cli_env: dict[str, str]
    keys: dict[str, Path]
    files: Path
    committee: Signer  # a founding committee member (dev account 0)
    pki: Pki
    api_settings: ApiSettings
    tokens_file: Path  # the API's tokens file (TOML), read again whenever it changes
    served_receipt: dict[str, Any]  # the oracle's receipt of quota1's one served access (on chain)
    denied_receipt: dict[str, Any]  # its receipt of a query under the revoked grant, refused (on chain)
    http: httpx.Client = field(repr=False)  # to the oracle
    api_http: httpx.Client = field(repr=False)  # to the API

    # ------------------------------------------------------------------ who is who
    def account(self, name: str) -> Signer:
        m = self.members
        return {"tax": m.tax.operator, "psb": m.psb.operator, "samr": m.samr.operator, "outsider": m.outsider,
                "tax-oracle": m.tax.oracle, "samr-oracle": m.samr.oracle, "auditor": m.audit.auditor,
                "committee": self.committee, "flooder": m.spare[0]}[name]

    def dept(self, name: str) -> int:
        return {"tax": self.members.tax.id, "psb": self.members.psb.id, "samr": self.members.samr.id}[name]

    @property
    def oracle_port(self) -> int:
        return int(self.oracle.url.rsplit(":", 1)[1])

    @property
    def api_port(self) -> int:
        return int(self.api.url.rsplit(":", 1)[1])

    @property
    def chain_id(self) -> int:
        return self.consortium.chain.chain_id

    @property
    def query_contract(self) -> str:
        return self.consortium.deployment.addresses["QueryRequests"]

    def company_id(self, i: int = 7) -> str:
        return companies()[i]["company_id"]

    def tax_fields(self) -> int:
        return self.consortium.catalog.dataset(self.datasets["companies"]).field_mask(TAX_FIELDS)

    # ------------------------------------------------------------------ queries to the oracle
    def signed(self, who: str = "tax", *, dept: str | None = None, dataset: str = "companies", grant: str = "ok",
               fields: int | None = None, params: dict[str, str] | None = None, ttl: int = 120, nonce: int | None = None,
               deadline: int | None = None, chain_id: int | None = None, contract: str | None = None) -> SignedQuery:
        """A signed query as an honest requester makes it, each part overridable."""
        return SignedQuery.sign(
            self.account(who), requester_dept=self.dept(dept or ("tax" if who in ("tax", "tax-oracle") else who)),
            dataset_id=self.datasets.get(dataset, 0) if dataset in self.datasets else int(dataset),
            grant_id=self.grants[grant] if grant in self.grants else int(grant),
            fields=self.tax_fields() if fields is None else fields,
            params={"company_id": self.company_id()} if params is None else params, salt=secrets.token_bytes(32),
            deadline=int(time.time()) + ttl if deadline is None else deadline,
            chain_id=self.chain_id if chain_id is None else chain_id,
            verifying_contract=self.query_contract if contract is None else contract, nonce=nonce)

    def post_query(self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Answer:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        reply = self.http.post("/v1/query", content=content,
                               headers={"Content-Type": "application/json", **(headers or {})})
        return answer_of(reply)

    # ------------------------------------------------------------------ the API
    def api_call(self, who: str | None, method: str, path: str, **kwargs: Any) -> Answer:
        headers = dict(kwargs.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return answer_of(self.api_http.request(method, path, headers=headers, **kwargs))

    # ------------------------------------------------------------------ evidence
    def outbox(self) -> list[OutboxRecord]:
        return list(self.oracle.oracle.outbox.all_records())

    def anchor(self) -> list[AuditRecord]:
        """Anchor whatever SAMR's oracle holds; the records that reached the chain."""
        block = self.consortium.chain.block_number()
        if self.oracle.oracle.outbox.pending_count() == 0:
            return []
        assert self.oracle.oracle.batcher.anchor_once(force=True)
        return list(self.consortium.audit_log.records(from_block=block + 1))

    def malformed_count(self) -> float:
        """``govshare_oracle_malformed_queries_total`` as SAMR's oracle exposes it on ``GET /metrics``."""
        match = _MALFORMED.search(self.http.get("/metrics").text)
        assert match, "the oracle exposes no malformed-query counter"
        return float(match.group(1))

    def state(self) -> dict[str, Any]:
        """What a refused input must leave as it was: the catalog, every grant (status, uses, quota,
        fields, expiry), the registry, the on-chain requests, every oracle's audit-log state, and SAMR's
        outbox (records and the served accesses it still counts against a quota)."""
        c = self.consortium
        datasets = {i: (c.catalog.dataset(i), c.catalog.latest_version(i)) for i in range(1, c.catalog.dataset_count() + 1)}
        grants = {i: c.grants.grant(i) for i in range(1, c.grants.grant_count() + 1)}
        registry = ([(d.id, d.active, d.oracle_url, tuple(c.registry.department_accounts(d.id))) for d in c.registry.departments()],
                    c.registry.committee(), c.registry.threshold(), c.registry.proposal_count())
        oracles = {who: c.audit_log.oracle_state(self.account(who).address) for who in ("samr-oracle", "tax-oracle")}
        outbox = self.oracle.oracle.outbox
        return {"datasets": datasets, "grants": grants, "registry": registry, "requests": c.queries.request_count(),
                "audit_log": oracles, "outbox": len(self.outbox()),
                "pending_served": {g: outbox.pending_served(g) for g in self.grants.values()}}


class Pki:
    """The module's test certificates: a department CA for the services' server certificates, the
    consortium's client CA (the world's clients and the API toward the oracle hold one of its
    certificates), and a stranger CA."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.servers = TestAuthority(directory, "department")
        self.clients = TestAuthority(directory, "consortium-clients")
        self.stranger = TestAuthority(directory, "stranger")
        self.oracle_server = self.servers.issue("samr-oracle", server=True)
        self.api_server = self.servers.issue("tax-api", server=True)
        self.client = self.clients.issue("catalogue-client", server=False)
        self.impostor = self.stranger.issue("impostor", server=False)

    def server_tls(self, issued: IssuedCertificate) -> ServerTls:
        """https with ``issued``, refusing clients without a certificate of the consortium's client CA."""
        return ServerTls(issued.cert_file, issued.key_file, self.clients.ca_file, require_client_cert=True)

    def client_context(self, issued: IssuedCertificate | None = None) -> ssl.SSLContext:
        """A client trusting the department CA, presenting ``issued`` (none by default)."""
        return client_context(self.servers, issued)


def answer_of(reply: httpx.Response) -> Answer:
    try:
        body = reply.json()
    except ValueError:
        body = {"_text": reply.text[:500]}
    return Answer(reply.status_code, {k.lower(): v for k, v in reply.headers.items()}, body if isinstance(body, dict) else {"_json": body})


def build_world(ganache: GanacheNode, template: Template, compilation: CompilationResult, company_api: ServerThread,
                committee: Signer, directory: Path) -> World:
    """Revert to the session's populated deployment and build the catalogue's world on it."""
    assert ganache.rpc("evm_revert", [template.snapshot]) is True
    template.snapshot = str(ganache.rpc("evm_snapshot"))
    consortium = Consortium(Chain(ganache.url), template.populated, compilation)
    m = template.members
    c = consortium
    rows = companies()
    datasets = {
        "companies": publish(c, m.samr, "企业登记信息", COMPANY_FIELDS, rows, Classification.INTERNAL),
        "annual": publish(c, m.samr, "企业年报", COMPANY_FIELDS, rows, Classification.INTERNAL),
        "retired": publish(c, m.samr, "旧企业登记", COMPANY_FIELDS, rows, Classification.INTERNAL),
        "residents": publish(c, m.psb, "常住人口信息", ("id_number", "name", "address"),
                             [{"id_number": "110105199001010001", "name": "居民", "address": "北京市"}], Classification.SENSITIVE),
    }
    mask = c.catalog.dataset(datasets["companies"]).field_mask(TAX_FIELDS)
    grants: dict[str, int] = {}

    def grant(name: str, requester: Signer, dataset: str = "companies", *, duration: int = 30 * DAY, quota: int = 1000,
              approve: bool = True) -> int:
        gid = c.grants.request(requester, datasets[dataset], mask, f"catalogue: {name}", duration, quota)
        if approve:
            c.grants.approve(m.samr.operator, gid, mask, duration, quota)
        grants[name] = gid
        return gid

    grant("ok", m.tax.operator)
    c.grants.revoke(m.samr.operator, grant("revoked", m.tax.operator), "catalogue: revoked")
    grant("expiring", m.tax.operator, duration=1)
    grant("requested", m.tax.operator, approve=False)
    grant("quota1", m.tax.operator, quota=1)
    grant("retired", m.tax.operator, "retired")
    c.catalog.retire(m.samr.operator, datasets["retired"])
    grant("psb", m.psb.operator)

    c.catalog.register(m.tax.operator, "纳税申报", ("taxpayer_id", "amount"), Classification.INTERNAL,
                       UpdateFrequency.DAILY)  # TAX's own dataset, no version yet (uploads to it are refused)
    datasets["tax-filings"] = c.catalog.dataset_count()

    files = directory / "files"
    files.mkdir()
    pki = Pki(directory / "pki")
    config_datasets = {datasets[name]: DatasetConfig(id=datasets[name], base_url=company_api.url, path="/companies",
                                                     params=("company_id", "status"), timeout_seconds=5.0)
                       for name in ("companies", "annual", "retired")}
    oracle = start_oracle(oracle_config(directory, c, "SAMR", config_datasets, requester_rate_limit=ORACLE_RATE_LIMIT,
                                        tls=pki.server_tls(pki.oracle_server)), m.samr.oracle, c)

    names = {"tax": m.tax.operator, "psb": m.psb.operator, "outsider": m.outsider, "flooder": m.spare[0],
             "expired": m.tax.operator}
    tokens = {name: secrets.token_urlsafe(32) for name in [*names, "revocable"]}
    expired_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    bindings = tuple(TokenBinding(sha256=token_sha256(tokens[n]), account=s.address, label=f"catalogue {n}",
                                  expires_at=expired_at if n == "expired" else None) for n, s in names.items())
    tokens_file = directory / "tokens.toml"
    write_tokens_file(tokens_file, {"revocable": (tokens["revocable"], m.tax.operator.address)})
    tls = pki.server_tls(pki.api_server)
    settings = ApiSettings(rpc_url=c.chain.url, tokens=bindings, tokens_file=tokens_file, oracle_urls={"SAMR": oracle.url},
                           max_body_bytes=API_MAX_BODY, rate_limit=API_RATE_LIMIT,
                           tls_cert_file=tls.cert_file, tls_key_file=tls.key_file, tls_client_ca_file=tls.client_ca_file,
                           tls_require_client_cert=True, oracle_ca_file=pki.servers.ca_file,
                           oracle_client_cert_file=pki.client.cert_file, oracle_client_key_file=pki.client.key_file,
                           serving=ServingSettings(keep_alive_seconds=API_IDLE_SECONDS, request_seconds=API_REQUEST_SECONDS))
    api = ServerThread(create_app(settings, consortium=c, signers=[m.tax.operator]), free_port(),
                       tls=tls.uvicorn_options(), keep_alive_seconds=API_IDLE_SECONDS,
                       request_seconds=API_REQUEST_SECONDS).start()

    manifest = c.deployment.save(directory / "deployments")
    env = cli_env(directory / "no-devnet", GOVSHARE_RPC=c.chain.url, GOVSHARE_MANIFEST=str(manifest),
                  GOVSHARE_KEY_PASSWORD=CLI_PASSWORD)
    keys = {name: save_keystore(signer, directory / f"{name}.json", CLI_PASSWORD, iterations=2)
            for name, signer in {"samr": m.samr.operator, "tax": m.tax.operator}.items()}
    client = pki.client_context(pki.client)
    # a pooled connection is dropped by the client before the API would close it as idle
    pool = httpx.Limits(keepalive_expiry=API_IDLE_SECONDS / 2)
    world = World(c, m, oracle, api, tokens, datasets, grants, env, keys, files, committee, pki, settings, tokens_file, {}, {},
                  httpx.Client(base_url=oracle.url, timeout=30, trust_env=False, verify=client),
                  httpx.Client(base_url=api.url, timeout=60, trust_env=False, verify=client, limits=pool))
    # quota1's one use, served and on chain, so that its next use is QUOTA_EXHAUSTED on chain
    served = world.post_query(world.signed(grant="quota1").to_json())
    assert served.status == 200, served.body
    world.served_receipt.update(served.body["receipt"])
    denied = world.post_query(world.signed(grant="revoked").to_json())
    assert denied.status == 403, denied.body
    world.denied_receipt.update(denied.body["receipt"])
    world.anchor()
    return world


def write_tokens_file(path: Path, tokens: dict[str, tuple[str, str]]) -> None:
    """The API's tokens file holding ``tokens`` (label -> (token, account)), replaced atomically."""
    text = "".join(f'[[tokens]]\nlabel = "catalogue {label}"\naccount = "{account}"\nsha256 = "{token_sha256(token)}"\n\n'
                   for label, (token, account) in tokens.items())
    fresh = path.with_suffix(".new")
    fresh.write_text(text, encoding="utf-8")
    fresh.replace(path)


def stop_world(world: World) -> None:
    world.http.close()
    world.api_http.close()
    world.api.stop()
    world.oracle.stop()
