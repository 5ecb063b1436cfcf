"""``python -m mock_services`` / ``twilio-e2ee-mock-stack``: run the offline stack until stopped.

Starts the mock Cards + Keyknox service, the mock Twilio service and the token backend on
loopback with shared development credentials, prints their URLs, optionally writes them (and the
credentials a client needs) to ``--urls-file`` as JSON, and shuts down cleanly on Ctrl-C or
SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mock_services.stack import OfflineStack, write_json
from twilio_e2ee.errors import ConfigurationError


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number in 0..65535, got {text!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-e2ee-mock-stack",
        description=(
            "Run the offline stack on loopback: mock Virgil Cards + Keyknox, mock Twilio "
            "Conversations and the token backend, sharing development credentials."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument(
        "--cards-port", type=_port, default=0, help="Cards + Keyknox port (0: free)"
    )
    parser.add_argument("--twilio-port", type=_port, default=0, help="mock Twilio port (0: free)")
    parser.add_argument(
        "--backend-port", type=_port, default=0, help="token backend port (0: free)"
    )
    parser.add_argument(
        "--db", metavar="DIR", default=None, help="keep all state (and credentials) in DIR"
    )
    parser.add_argument(
        "--urls-file", metavar="PATH", default=None, help="also write URLs + credentials as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack: OfflineStack | None = None
    try:
        stack = OfflineStack(
            args.db,
            cards_port=args.cards_port,
            twilio_port=args.twilio_port,
            backend_port=args.backend_port,
            host=args.host,
        )
        stack.start()
        urls = stack.urls_dict()
        if args.urls_file:
            try:
                write_json(Path(args.urls_file), urls)
            except OSError as exc:
                problem = exc.strerror or exc
                raise ConfigurationError(f"cannot write {args.urls_file!r}: {problem}") from None
    except ConfigurationError as exc:
        print(f"twilio-e2ee-mock-stack: {exc}", file=sys.stderr)
        if stack is not None:
            stack.stop()
        return 2
    try:
        if not args.quiet:
            print(f"Virgil Cards + Keyknox (apiUrl): {stack.cards_url}")
            print(f"Twilio Conversations:            {stack.twilio_url}")
            print(f"Token backend:                   {stack.backend_url}")
            print(f"Twilio account SID:              {urls['twilio_account_sid']}")
            print(f"Conversations service SID:       {urls['twilio_conversations_service_sid']}")
            print(f"Virgil app id:                   {urls['virgil_app_id']}")
            if args.urls_file:
                print(f"URLs and credentials written to {args.urls_file}")
            print("Development credentials only. Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.2):
            if not stack.running:
                print("twilio-e2ee-mock-stack: a server stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        stack.stop()
    if not args.quiet:
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
