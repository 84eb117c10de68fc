"""Test support: the server harness, the test IdP, clients and helpers, and the fixtures
(loaded as pytest plugins from tests/conftest.py). Tests import helpers from here, never
from a conftest."""
