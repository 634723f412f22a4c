"""Command line: `ark` (run the gateway), `ark --version`, and the subcommands
`ark doctor`, `ark health`, `ark chat` (each a module with `main(argv) -> int`)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ark import __version__

if TYPE_CHECKING:
    from ark.config import Settings

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2

# subcommand -> module whose `main(argv: list[str]) -> int` runs it (imported only when used)
SUBCOMMANDS = {"doctor": "ark.doctor", "health": "ark.health", "chat": "ark.chat"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ark",
        description="Slack gateway for AWS Bedrock Agents (Socket Mode).",
        epilog="subcommands: ark doctor (preflight checks), ark health (exit 0 when the "
        "running gateway is healthy), ark chat (talk to the agent in this terminal)",
    )
    parser.add_argument("--version", action="version", version=f"ark {__version__}")
    parser.add_argument(
        "--env-file", default=".env", help="dotenv file to read (default: ./.env if present)"
    )
    return parser


async def _run(settings: Settings, env: Mapping[str, str]) -> int:
    # asyncio and signal are imported here, not at the top: `ark health` runs every few
    # seconds as a container health check and must not pay for them
    import asyncio
    import signal

    from ark.app import FatalError, serve
    from ark.log import get_logger

    log = get_logger("ark.main")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            log.info("signal", signal=signal.Signals(signum).name, action="drain")
            stop.set()
        elif main_task is not None:
            log.warning("signal", signal=signal.Signals(signum).name, action="exit_now")
            main_task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await serve(settings, stop=stop, env=env)
    except FatalError as exc:
        log.error("fatal", error=str(exc))
        return EXIT_FATAL
    except asyncio.CancelledError:
        return EXIT_FATAL
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        command = importlib.import_module(SUBCOMMANDS[argv[0]])
        return int(command.main(argv[1:]))
    args = _parser().parse_args(argv)
    from ark.config import ConfigError, load_environment, load_settings
    from ark.log import configure_logging

    try:
        env = load_environment(dotenv_path=args.env_file)
    except ConfigError as exc:
        print(f"ark: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # botocore reads AWS_* (keys, endpoints, profile) from the process environment itself
    for key, value in env.items():
        os.environ.setdefault(key, value)
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"ark: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from ark.aws import profile_problem

    problem = profile_problem(settings.aws_profile, env)
    if problem is not None:
        print(f"ark: invalid configuration:\n  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    import asyncio

    try:
        return asyncio.run(_run(settings, env))
    except KeyboardInterrupt:
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
