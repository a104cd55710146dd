"""``presence serve | talk | bench``: the command line.

``serve`` takes one flag per ``Settings`` field (``--confirm-ms 300``); each also reads from
``PRESENCE_<FIELD>`` in the environment, and a flag wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from presence.config import Settings


def _field_type(annotation: Any) -> tuple[Any, list[str] | None]:
    """(argparse type, choices) for a Settings annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _field_type(inner[0]) if inner else (str, None)
    if annotation is bool:
        return bool, None
    if annotation in (int, float, str):
        return annotation, None
    if annotation is SecretStr:
        return None, None  # secrets come from the environment only
    return str, None


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for name, info in Settings.model_fields.items():
        kind, choices = _field_type(info.annotation)
        if kind is None:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = (info.description or "").strip()
        default_text = f"default {info.default!r}; env PRESENCE_{name.upper()}"
        if kind is bool:
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} ({default_text})",
            )
            continue
        parser.add_argument(
            flag,
            dest=name,
            type=kind,
            choices=choices,
            default=argparse.SUPPRESS,
            help=f"{help_text} ({default_text})" if help_text else default_text,
        )


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    return Settings(**overrides)


def serve(settings: Settings) -> int:
    from presence.server.app import Server, create_app, uvicorn_config
    from presence.server.logs import guard_server_logs

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)  # settings that must not run fail here, in the parent too
    asyncio.run(app.state.hub.engine.check())  # a refused model fails here, before the server starts
    url = f"http://{settings.host}:{settings.port}/"
    if settings.workers > 1:
        from presence.server.workers import Supervisor

        print(f"presence: engine '{settings.engine}', {settings.workers} workers — open {url}", flush=True)
        return Supervisor(settings).run()
    config = uvicorn_config(app, settings)
    guard_server_logs()  # after uvicorn_config: uvicorn's log handlers exist from there on
    server = Server(config, app.state.hub, settings.drain_timeout_s)
    print(f"presence: engine '{settings.engine}' — open {url} and allow the microphone", flush=True)
    profile_out = os.environ.get("PRESENCE_PROFILE_OUT")  # `bench scale --profile`: where the time goes
    if not profile_out:
        server.run()
        return 0
    import cProfile
    import signal

    # uvicorn re-raises the SIGTERM it handled once the server is down: make that an exit
    # this function sees, so the profile is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()  # the event loop's thread: every session's work runs there
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(profile_out)
    return 0


def token(args: argparse.Namespace) -> int:
    """Print a session token signed with PRESENCE_AUTH_SECRET (what an operator's backend does)."""
    import time

    from presence.server.auth import mint_token

    settings = Settings()
    if settings.auth_secret is None:
        print("presence token: set PRESENCE_AUTH_SECRET to the server's secret", file=sys.stderr)
        return 2
    ttl = args.ttl if args.ttl is not None else settings.token_ttl_s
    try:
        print(mint_token(settings.auth_secret.get_secret_value().encode(), time.time(), ttl, args.subject))
    except ValueError as exc:
        print(f"presence token: {exc}", file=sys.stderr)
        return 2
    return 0


def talk(args: argparse.Namespace) -> int:
    from presence.audio.wavfile import WavError
    from presence.client.talk import print_turns
    from presence.client.talk import talk as run_talk

    try:
        result = asyncio.run(
            run_talk(args.url, Path(args.wav), Path(args.out) if args.out else None, args.settle, args.token)
        )
    except WavError as exc:
        print(f"presence talk: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"presence talk: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print_turns(result)
    if not result.turns:
        print("presence talk: no turn completed (was there speech in the file?)", file=sys.stderr)
        return 1
    if args.out:
        print(f"wrote {args.out}/reply.wav, animation.jsonl and turns.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="presence", description="Real-time talking-avatar agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve_parser = sub.add_parser("serve", help="run the server (web client at /, WebSocket at /v1/session)")
    _add_settings_flags(serve_parser)

    token_parser = sub.add_parser("token", help="mint a session token with PRESENCE_AUTH_SECRET (docs/security.md)")
    token_parser.add_argument("--ttl", type=float, help="lifetime in seconds (default: --token-ttl-s)")
    token_parser.add_argument("--subject", help="who the token is for (the 'sub' claim, shown in logs)")

    talk_parser = sub.add_parser("talk", help="speak a WAV file to a server and save the reply")
    talk_parser.add_argument("wav", help="a PCM WAV file, any common rate; channels are mixed down")
    talk_parser.add_argument("--url", default="ws://127.0.0.1:8080/v1/session")
    talk_parser.add_argument(
        "--token", help="session token (default: $PRESENCE_TOKEN, else asked of a loopback server)"
    )
    talk_parser.add_argument("--out", help="directory for reply.wav, animation.jsonl, turns.json")
    talk_parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait for replies after the file")

    bench_parser = sub.add_parser("bench", help="run a benchmark suite (presence bench SUITE --help)")
    bench_parser.add_argument(
        "suite", help="overhead, lipsync, endpointing, engine, cloud, g2g, scale, pipecat, soak ..."
    )
    bench_parser.add_argument("rest", nargs=argparse.REMAINDER, help="the suite's own options (--quick, --json PATH)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from presence.engines import EngineUnavailable
        from presence.server.app import ConfigError

        try:
            return serve(_settings_from(args))
        except (EngineUnavailable, ConfigError) as exc:
            print(f"presence serve: {exc}", file=sys.stderr)
            return 2
    if args.command == "token":
        return token(args)
    if args.command == "talk":
        return talk(args)
    from presence.bench import run

    return run(args.suite, args.rest)


if __name__ == "__main__":
    sys.exit(main())
