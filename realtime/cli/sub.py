"""``sttr sub [ADDR]``: print predictions (and, with --status, status messages) as they arrive."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from ..client import Prediction, Subscriber
from ..messages import MessageError
from ..publisher import DEFAULT_PUB_ADDR
from ..terminal_view import format_prediction, format_status

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sttr sub", description="Print sttr predictions from a publisher (sttr-live).")
    p.add_argument("addr", nargs="?", default=DEFAULT_PUB_ADDR, help=f"publisher address (default {DEFAULT_PUB_ADDR})")
    p.add_argument("--stream", default="", help="only this stream id (default: every stream)")
    p.add_argument("--status", action="store_true", help="also print status messages")
    p.add_argument("--json", action="store_true", help="print each message as one JSON line (machine-readable)")
    p.add_argument("-k", "--top-k", type=int, default=3, help="classes shown per prediction (default 3)")
    p.add_argument("-n", "--count", type=int, default=0, help="exit after this many predictions (0: never)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="exit with status 1 after S seconds without a message (default: wait forever)")
    return p


def _line(msg, as_json: bool, k: int) -> str:
    if as_json:
        fields = asdict(msg)
        fields.pop("received_ns", None)
        return json.dumps(fields)
    if isinstance(msg, Prediction):
        payload = {"seq": msg.seq, "topk": [vars(t) for t in msg.topk], "latency_ms": msg.latency_ms,
                   "persons": list(msg.persons)}
        return f"[{msg.stream}] " + format_prediction(payload, k)
    return f"[{msg.stream}] status: " + format_status(vars(msg))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    topics = [f"pred.{args.stream}"] + ([f"status.{args.stream}"] if args.status else [])
    try:
        sub = Subscriber(args.addr, topics=topics, timeout_s=args.timeout)
    except (ValueError, ImportError) as exc:
        print(f"sttr sub: error: {exc}", file=sys.stderr)
        return 2
    seen = 0
    try:
        with sub:
            while True:
                try:
                    msg = sub.recv()
                except TimeoutError as exc:
                    print(f"sttr sub: {exc} (is sttr-live running and publishing there?)", file=sys.stderr)
                    return 1
                if args.stream and msg.stream != args.stream:
                    continue  # ZeroMQ filters topic prefixes: pred.cam0 also matches pred.cam01
                print(_line(msg, args.json, args.top_k), flush=True)
                if isinstance(msg, Prediction):
                    seen += 1
                    if args.count and seen >= args.count:
                        return 0
    except KeyboardInterrupt:
        return 0
    except MessageError as exc:  # only raised in strict mode; kept for clarity
        print(f"sttr sub: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
