"""Settings of the property-based tests (hypothesis), loaded by ``tests/conftest.py``.

Profiles (``HYPOTHESIS_PROFILE``, default ``govshare``):

* ``govshare`` - what ``make test`` and CI run: **derandomized** (the examples are a function of the
  test alone, so a failure reproduces exactly on every machine and a green run stays green), no
  example database, no deadline (timings on the shared 2-core machine are noisy; a deadline would
  fail at random), 100 examples for the pure properties and fewer for the ones on a real chain
  (:func:`examples`).
* ``explore`` - random, with the local example database (``.hypothesis/``), ten times the examples:
  for a developer hunting for new counterexamples (``HYPOTHESIS_PROFILE=explore make test
  PYTEST_ARGS=-k properties``). A failure it finds goes into the test as an ``@example``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "govshare")
BASE_EXAMPLES = 100

settings.register_profile(
    "govshare", max_examples=BASE_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=10 * BASE_EXAMPLES, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def load_profile() -> None:
    settings.load_profile(PROFILE)


def examples(count: int) -> int:
    """``count`` examples under the default profile, scaled with the loaded profile's ``max_examples``
    (for the properties on a real chain, where an example costs transactions)."""
    return max(1, count * settings.default.max_examples // BASE_EXAMPLES)
