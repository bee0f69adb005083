"""Assemble and run one department's oracle: ``govshare oracle serve --config FILE``."""

from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import serving
from ledger.deployment import Consortium
from ledger.keys import Signer, load_keystore, read_password
from oracle.anchoring import AnchoringProcess, AnchoringSettings
from oracle.app import OracleHttpApp, create_app
from oracle.batcher import Batcher
from oracle.config import OracleConfig
from oracle.outbox import Outbox
from oracle.outbox_seal import SEAL_KEY_LABEL
from oracle.request_follower import OnChainRequestFollower
from oracle.service import OracleService

log = logging.getLogger("govshare.oracle")

#: Seconds a thread may hold the GIL while others wait (CPython's default is 0.005).
GIL_SWITCH_INTERVAL = 0.0005


@dataclass
class Oracle:
    """A running oracle's parts."""

    config: OracleConfig
    consortium: Consortium
    service: OracleService
    outbox: Outbox
    batcher: Batcher | AnchoringProcess
    follower: OnChainRequestFollower
    app: OracleHttpApp

    def close(self, *, flush: bool = True) -> None:
        self.follower.stop()
        self.app.close()
        self.batcher.stop(flush=flush)
        self.service.close()
        self.outbox.close()


def build_oracle(
    config: OracleConfig, signer: Signer | None = None, consortium: Consortium | None = None, *, follow_requests: bool = True
) -> Oracle:
    """Connect to the chain, check the batching limits against the consortium's decision-age bound
    (:class:`~oracle.errors.ConfigError`), open and bind the outbox, start the batcher (in its own process, or on a
    thread: ``config.anchoring``) and the on-chain request follower, build the HTTP app."""
    if signer is None:
        signer = load_keystore(config.key_file, read_password(config.password_file))
    if consortium is None:
        consortium = Consortium.connect(config.rpc_url, config.manifest, tls=config.rpc_tls,
                                        timeout=config.rpc_timeout_seconds, receipt_timeout=config.rpc_receipt_timeout_seconds)
    # batching limits that could not meet the consortium's decision-age bound are refused before anything starts
    config.check_decision_age_bound(consortium.registry.max_decision_age_blocks(), consortium.chain.receipt_timeout)
    outbox = Outbox(config.outbox)
    identity = {
        "oracle": signer.address,
        "chain_id": str(consortium.chain.chain_id),
        "audit_log": consortium.deployment.addresses["AuditLog"],
    }
    state = consortium.audit_log.oracle_state(signer.address)
    try:  # refuses (OutboxTampered) an outbox whose records not yet on chain are not what this oracle wrote
        outbox.bind(identity, state.last_sequence, state.head, seal_key=signer.derive_key(SEAL_KEY_LABEL))
    except BaseException:
        outbox.close()
        raise
    service = OracleService(config, consortium, signer, outbox)
    batcher: Batcher | AnchoringProcess
    if config.anchoring == "process":
        settings = AnchoringSettings(rpc_url=consortium.chain.url, rpc_tls=config.rpc_tls,
                                     deployment_json=consortium.deployment.to_json(),
                                     compilation=consortium.compilation, outbox=config.outbox,
                                     max_records=config.batch_max_records, max_age=config.batch_max_age_seconds,
                                     max_in_flight=config.batch_max_in_flight, rpc_timeout=config.rpc_timeout_seconds,
                                     receipt_timeout=config.rpc_receipt_timeout_seconds,
                                     stuck_after=config.batch_stuck_after_seconds,
                                     chain_check_seconds=config.batch_chain_check_seconds)
        batcher = AnchoringProcess(outbox, signer, settings).start()  # it reconciles with the chain first
    else:
        batcher = Batcher(outbox, consortium.audit_log, signer, max_records=config.batch_max_records,
                          max_age=config.batch_max_age_seconds, max_in_flight=config.batch_max_in_flight,
                          decision_age_limit=consortium.registry.max_decision_age_blocks,
                          stuck_after=config.batch_stuck_after_seconds,
                          chain_check_seconds=config.batch_chain_check_seconds)
        batcher.reconcile()  # records the chain lost are anchored again; a chain holding other ones is refused
        batcher.start()
    follower = OnChainRequestFollower(service, signer, poll_interval=config.request_poll_interval_seconds)
    app = create_app(service, batcher, max_request_bytes=config.max_request_bytes)
    follower.on_answer = app.metrics.chain_request_answered
    if follow_requests:
        follower.start()
    return Oracle(config, consortium, service, outbox, batcher, follower, app)


def serve(config_path: Path) -> None:
    config = OracleConfig.load(config_path)
    oracle = build_oracle(config)
    # Everything built so far (web3, contracts, the app) lives as long as the process: keep it out
    # of the collector's generations, so that full collections under load stay short (tail latency).
    gc.collect()
    gc.freeze()
    # Answers are handed between the event loop and the worker threads; with the default 5 ms GIL
    # switch interval, a thread busy hashing (or the batcher packing a batch) holds the others up to
    # 5 ms at a time. Measured in scripts/bench/oracle_load.py: p99 added latency at half peak 63 -> 28 ms.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    anchoring = oracle.batcher.process.pid if isinstance(oracle.batcher, AnchoringProcess) and oracle.batcher.process else None
    tls = config.tls
    log.info("oracle %s for %s listening on %s://%s:%d (%s mode; anchoring %s)", oracle.service.signer.address, config.department,
             "https" if tls else "http", config.listen_host, config.listen_port, config.mode,
             f"in process {anchoring}" if anchoring else "on a thread")
    try:
        serving.serve(oracle.app, config.listen_host, config.listen_port, config.serving,  # returns on SIGINT/SIGTERM
                      tls=tls.uvicorn_options() if tls else None)
    finally:
        oracle.close()
