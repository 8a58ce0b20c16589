"""Fixtures of the zuul scenario's tests (helpers in zuul_platform.py)."""

import secrets

import pytest
from zuul_platform import host, timed_build


@pytest.fixture(scope="session")
def zuul01():
    return host("zuul01")


@pytest.fixture(scope="session")
def client():
    """node01, the static build node, is also the tests' client of the web front."""
    return host("node01")


@pytest.fixture(scope="session")
def first_build(zuul01, client):
    """The smoke job run once: (token, build)."""
    token = secrets.token_hex(8)
    return token, timed_build(zuul01, client, token)
