"""The requester's tests talk to market supervision's oracle over HTTP (``tests/oracle/conftest.py``)."""

from tests.oracle.conftest import published, samr_oracle  # noqa: F401 - fixtures
