"""Publisher: multipart [topic, payload], loopback, never blocked by subscribers, clear error on a taken port."""
from __future__ import annotations

import time

import pytest
import zmq

from sttr.realtime import messages as msg
from sttr.realtime.publisher import Publisher, PortInUseError

from ._zmq_helpers import send_until_received

PAYLOAD = msg.status_payload(stream="t", input_fps=30.0, frames_dropped=0, persons_seen=1, queue_depth=0,
                             backend="fake")


def _raw_sub(ctx: zmq.Context, addr: str, topic: bytes = b"") -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(addr)
    return sock


def _receiver(sock: zmq.Socket):
    def receive(timeout_s: float):
        if sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return sock.recv_multipart()
        return None
    return receive


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_multipart_topic_and_payload_over_tcp(ctx, fmt):
    with Publisher("tcp://127.0.0.1:*", fmt=fmt, context=ctx) as pub:
        assert pub.addr.startswith("tcp://127.0.0.1:") and not pub.addr.endswith(":*")
        sub = _raw_sub(ctx, pub.addr, b"status.")
        try:
            frames = send_until_received(pub, _receiver(sub), b"status.t", PAYLOAD)
        finally:
            sub.close()
    assert len(frames) == 2 and frames[0] == b"status.t"
    assert msg.decode(frames[1]) == PAYLOAD
    assert (frames[1][:1] == b"{") == (fmt == "json")
    assert pub.sent >= 1


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_a_non_finite_score_is_never_published(ctx, fmt):
    pred = msg.prediction_payload(stream="t", seq=0, window={"first_frame": 0, "last_frame": 7, "frames": 8,
                                                             "fps": 30.0, "t_first_ms": 0.0, "t_last_ms": 233.0},
                                  persons=[0], topk=[("a", 0, float("nan"))], model="m", backend="b",
                                  latency_ms={})
    with Publisher("inproc://test-nan", fmt=fmt, context=ctx) as pub:
        sub = _raw_sub(ctx, "inproc://test-nan", b"pred.")
        try:
            assert pub.wait_for_subscriber(5.0)
            assert pub.send(b"pred.t", pred) is False  # JSON raised ValueError, msgpack sent the NaN
            assert not sub.poll(50, zmq.POLLIN)
        finally:
            sub.close()
    assert pub.refused == 1 and pub.sent == 0


def test_inproc_and_topic_filter(ctx):
    with Publisher("inproc://test-pub", context=ctx) as pub:
        sub = _raw_sub(ctx, "inproc://test-pub", b"pred.")
        try:
            assert pub.wait_for_subscriber(5.0)
            pub.send(b"status.t", PAYLOAD)  # filtered out by the subscriber's prefix
            pub.send(b"pred.t", PAYLOAD)
            assert sub.poll(5000, zmq.POLLIN)
            assert sub.recv_multipart()[0] == b"pred.t"
            assert not sub.poll(50, zmq.POLLIN)
        finally:
            sub.close()


def test_wait_for_subscriber_times_out_without_one(ctx):
    with Publisher("tcp://127.0.0.1:*", context=ctx) as pub:
        t0 = time.monotonic()
        assert not pub.wait_for_subscriber(0.05)
        assert time.monotonic() - t0 < 2.0


def test_slow_subscriber_never_blocks_and_drops_are_counted(ctx):
    with Publisher("tcp://127.0.0.1:*", sndhwm=10, nodrop=True, context=ctx) as pub:
        sub = _raw_sub(ctx, pub.addr)
        sub.setsockopt(zmq.RCVHWM, 10)
        try:
            assert pub.wait_for_subscriber(5.0)
            big = b"{" + b" " * 65534 + b"}"  # 64 KiB: far more than loopback TCP buffers hold, so queues fill up
            t0 = time.monotonic()
            results = [pub.send_raw(b"pred.t", big) for _ in range(2000)]  # the subscriber never reads
            elapsed = time.monotonic() - t0
        finally:
            sub.close()
    assert elapsed < 5.0, f"2000 sends to a stuck subscriber took {elapsed:.1f} s"
    assert results.count(False) == pub.dropped > 0
    assert pub.sent + pub.dropped == 2000


def test_subscriber_going_away_does_not_block(ctx):
    with Publisher("tcp://127.0.0.1:*", sndhwm=5, context=ctx) as pub:
        sub = _raw_sub(ctx, pub.addr)
        send_until_received(pub, _receiver(sub), b"pred.t", PAYLOAD)
        sub.close()
        t0 = time.monotonic()
        for _ in range(2000):
            pub.send(b"pred.t", PAYLOAD)
        assert time.monotonic() - t0 < 5.0
        # a new subscriber still gets messages
        sub2 = _raw_sub(ctx, pub.addr)
        try:
            assert send_until_received(pub, _receiver(sub2), b"pred.t", PAYLOAD)[0] == b"pred.t"
        finally:
            sub2.close()


def test_port_in_use_is_a_clear_error(ctx):
    with Publisher("tcp://127.0.0.1:*", context=ctx) as first:
        with pytest.raises(PortInUseError, match=r"already in use.*--pub tcp://127\.0\.0\.1:\d+"):
            Publisher(first.addr, context=ctx)


@pytest.mark.parametrize("addr", ["127.0.0.1:5555", "udp://127.0.0.1:5555", "tcp://127.0.0.1"])
def test_bad_address_is_rejected(ctx, addr):
    with pytest.raises(ValueError, match="address"):
        Publisher(addr, context=ctx)


def test_bad_format_is_rejected(ctx):
    with pytest.raises(ValueError, match="format"):
        Publisher("tcp://127.0.0.1:*", fmt="xml", context=ctx)
