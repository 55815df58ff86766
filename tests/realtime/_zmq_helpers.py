"""Test helpers for ZeroMQ: get past the slow-joiner without sleeping."""
from __future__ import annotations

from sttr.realtime.publisher import Publisher


def send_until_received(pub: Publisher, receive, topic: bytes, payload: dict, tries: int = 200, poll_s: float = 0.02):
    """Send ``payload`` again and again until ``receive(poll_s)`` returns something (bounded); return it.

    A subscriber that has just connected misses what was published before its subscription reached the publisher
    (ZeroMQ's slow joiner), so the first message is retried; each try waits on a poll, not a sleep.
    """
    for _ in range(tries):
        pub.send(topic, payload)
        got = receive(poll_s)
        if got is not None:
            return got
    raise AssertionError(f"subscriber received nothing after {tries} sends")
