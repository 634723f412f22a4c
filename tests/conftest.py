"""Test-wide isolation: no test may reach AWS, Slack or any other real host."""

from __future__ import annotations

import os

# Fake, obviously-not-real AWS credentials; no shared config; no instance metadata lookups.
_ISOLATION = {
    "AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key-not-real",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}
for _k, _v in _ISOLATION.items():
    os.environ[_k] = _v
for _k in (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
):
    os.environ.pop(_k, None)


# ---- the loopback fakes, shared by the end-to-end tests ------------------------------------

import pytest  # noqa: E402  (after the isolation above, which must run first)

from tests.fakes.bedrock import FakeBedrock  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402


@pytest.fixture
async def slack():
    """A loopback Slack with one user, U1 (a test module may define its own)."""
    async with FakeSlack() as fake:
        fake.add_user("U1", real_name="Ada Lovelace", tz="Europe/London", title="Engineer")
        yield fake


@pytest.fixture
async def bedrock():
    """A loopback Bedrock Agent Runtime answering with the echo script."""
    async with FakeBedrock() as fake:
        yield fake
