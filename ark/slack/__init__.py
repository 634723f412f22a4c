"""Everything that faces Slack: Socket Mode, the Web API, files, history."""
