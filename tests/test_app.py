"""Wiring in ark.app that the end-to-end tests do not pin down."""

from __future__ import annotations

from ark.app import make_http_client, make_ssl_context


async def test_slack_client_keeps_alive_every_connection_it_may_open():
    # Under load a connection dropped after its request means a fresh TLS handshake with
    # Slack for the next one: the pool keeps alive as many as it may open.
    client = make_http_client(make_ssl_context(), max_concurrency=30)
    try:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == 60
        assert pool._max_keepalive_connections == pool._max_connections
    finally:
        await client.aclose()
