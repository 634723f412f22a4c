"""Turning an agent's answer into Slack message payloads (pure functions)."""
