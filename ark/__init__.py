"""Ark: a Slack gateway for AWS Bedrock Agents over Socket Mode."""

__version__ = "0.1.0"
