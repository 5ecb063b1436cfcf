"""``python -m twilio_e2ee.backend`` / ``twilio-e2ee-backend``: run the token backend on uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from twilio_e2ee.backend.app import create_backend_app
from twilio_e2ee.backend.config import BackendConfig
from twilio_e2ee.errors import ConfigurationError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-e2ee-backend",
        description=(
            "Token backend for E3Kit-style Twilio chat: Virgil JWTs and Twilio access tokens "
            "behind password sign-in. Credentials come from APP_ID, APP_KEY, APP_KEY_ID, "
            "TWILIO_ACCOUNT_SID, TWILIO_API_KEY_SID, TWILIO_API_SECRET, TWILIO_SERVICE_SID "
            "(none set: generated development credentials)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=3000, help="port (default 3000, as the sample)")
    parser.add_argument(
        "--db", default=None, help="SQLite file for users and sessions (default: memory)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--development",
        action="store_true",
        help="also accept the sample's password-less {identity} sign-in (loopback only)",
    )
    mode.add_argument(
        "--production",
        action="store_true",
        help="require every credential from the environment; password sign-in only",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.development and args.host not in LOOPBACK:
            raise ConfigurationError("development mode serves on a loopback address only")
        config = BackendConfig.from_env(
            development=args.development, production=args.production, db_path=args.db
        )
        app = create_backend_app(config)
    except ConfigurationError as exc:
        print(f"twilio-e2ee-backend: {exc}", file=sys.stderr)
        return 2
    mode = "development" if config.development else "production"
    print(f"twilio-e2ee-backend ({mode} mode) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
