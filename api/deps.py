"""What every route depends on: the service's context (settings, chain, keys) as ``Annotated`` aliases.

``ContextDep`` is the :class:`ApiContext` of the running app; ``ConsortiumDep`` its connection to the
chain. Routes take ``CurrentCaller`` (``api.auth``) to know who asks.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from eth_utils import to_checksum_address
from fastapi import Depends, Request

from api.metrics import ApiMetrics
from api.settings import ApiSettings
from ledger.contracts.registry import Department
from ledger.deployment import Consortium
from ledger.keys import Signer, load_keystore, read_password
from serving.rate_limit import RateLimit

if TYPE_CHECKING:
    from api.auth import ReplayGuard
    from api.tokens import TokenTable

__all__ = ["ApiContext", "ConsortiumDep", "ContextDep", "get_consortium", "get_context", "load_signers"]

log = logging.getLogger("govshare.api")


@dataclass
class ApiContext:
    """The service's state: settings, the keys it acts with, and the chain (connected on first use).

    The chain is connected lazily, so the service starts (and answers 503 problems) while the node
    is down; a failed connection is retried on the next request.
    """

    settings: ApiSettings
    signers: Mapping[str, Signer]  # by checksummed address
    tokens: TokenTable
    replays: ReplayGuard
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    rate_limit: RateLimit | None = None  # per authenticated account (settings.rate_limit)
    _consortium: Consortium | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fields: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _oracle_ssl: ssl.SSLContext | None = field(default=None, repr=False)

    def consortium(self) -> Consortium:
        """The connection to the chain; raises ``ChainUnavailable`` (503) while the node is down."""
        if self._consortium is None:
            with self._lock:
                if self._consortium is None:
                    self._consortium = Consortium.connect(self.settings.rpc_url, self.settings.manifest,
                                                          tls=self.settings.rpc_tls,
                                                          timeout=self.settings.rpc_timeout_seconds,
                                                          receipt_timeout=self.settings.rpc_receipt_timeout_seconds)
        return self._consortium

    def signer_for(self, account: str) -> Signer | None:
        """The key the service holds for ``account``, if any."""
        return self.signers.get(to_checksum_address(account))

    def dataset_fields(self, dataset_id: int) -> tuple[str, ...]:
        """A dataset's field names (a schema never changes once registered, so they are cached)."""
        cached = self._fields.get(dataset_id)
        if cached is None:
            cached = self.consortium().catalog.fields(dataset_id)
            if cached:
                self._fields[dataset_id] = cached
        return cached

    def oracle_ssl_context(self) -> ssl.SSLContext:
        """The TLS client context toward providers' https oracles (the settings' ``oracle_*`` files),
        built once: every query's client shares it."""
        if self._oracle_ssl is None:
            self._oracle_ssl = self.settings.oracle_tls.context()
        return self._oracle_ssl

    def oracle_url(self, department: Department) -> str:
        """The provider's oracle URL: the configured override for its code, else the registry's ('' if none)."""
        return self.settings.oracle_urls.get(department.code.upper(), department.oracle_url.rstrip("/"))


def load_signers(settings: ApiSettings) -> list[Signer]:
    """Decrypt the keystores the settings name (passwords from their files or ``$GOVSHARE_KEY_PASSWORD``)."""
    signers = []
    for entry in settings.keystores:
        password = read_password(entry.password_file or settings.password_file)
        signers.append(load_keystore(entry.path, password))
    return signers


def signer_map(signers: Iterable[Signer]) -> dict[str, Signer]:
    """Signers by checksummed address."""
    return {to_checksum_address(s.address): s for s in signers}


def get_context(request: Request) -> ApiContext:
    """The running app's :class:`ApiContext`."""
    return request.app.state.context


def get_consortium(context: Annotated[ApiContext, Depends(get_context)]) -> Consortium:
    """The chain connection (503 while the node cannot be reached)."""
    return context.consortium()


ContextDep = Annotated[ApiContext, Depends(get_context)]
ConsortiumDep = Annotated[Consortium, Depends(get_consortium)]
