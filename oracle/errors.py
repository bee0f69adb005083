"""Oracle refusals and failures. Every one is a :class:`ledger.errors.LedgerError` (the project's
single exception root) and carries the audit reason code it is recorded with."""

from __future__ import annotations

from ledger.contracts.audit_log import OracleReason
from ledger.errors import LedgerError


class OracleError(LedgerError):
    """Root of the oracle's own errors; ``reason`` is the audit record's reason code."""

    reason: int = int(OracleReason.MALFORMED_REQUEST)
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedRequest(OracleError):
    reason, http_status = int(OracleReason.MALFORMED_REQUEST), 400


class BadSignature(OracleError):
    reason, http_status = int(OracleReason.BAD_SIGNATURE), 401


class DeadlinePassed(OracleError):
    reason, http_status = int(OracleReason.DEADLINE_PASSED), 401


class NonceReplayed(OracleError):
    reason, http_status = int(OracleReason.NONCE_REPLAYED), 409


class UnknownDataset(OracleError):
    reason, http_status = int(OracleReason.UNKNOWN_DATASET), 404


class ChainUnreachable(OracleError):
    reason, http_status = int(OracleReason.CHAIN_UNAVAILABLE), 503


class SourceUnavailable(OracleError):
    """The department's API could not be reached or answered with an error."""

    reason, http_status = int(OracleReason.SOURCE_UNAVAILABLE), 502


class SourceTimeout(SourceUnavailable):
    reason, http_status = int(OracleReason.SOURCE_TIMEOUT), 504


class SourceBadResponse(SourceUnavailable):
    """The department's API answered something that is not a bounded JSON ``{"records": [...]}``."""

    reason, http_status = int(OracleReason.SOURCE_BAD_RESPONSE), 502


class ConfigError(LedgerError, ValueError):
    """The oracle's configuration file is missing, not TOML, or has a bad value.

    ``key`` is the dotted key at fault (``datasets.1.timeout_seconds``), or ``""`` when the fault is
    the file itself; ``path`` is the file. The message names both and never echoes a secret.
    """

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.key, self.problem))


class QuotaUsedUp(OracleError):
    """A served access would overrun its grant's quota, counting accesses not yet on chain."""

    reason, http_status = int(OracleReason.QUOTA_PENDING), 403


class RateLimited(OracleError):
    """The requester sent more signed queries than ``requester_rate_limit`` allows; ``retry_after``
    is the seconds until its window has room again."""

    reason, http_status = int(OracleReason.RATE_LIMITED), 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
