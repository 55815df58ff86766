"""Subscriber as a user program drives it: a hostile payload on the address (JSON nested too deep) is skipped, not a
crash of the loop; topics as bytes; timeouts and topics of the wrong type; a closed subscriber says so."""
from __future__ import annotations

import pytest

from sttr.realtime import messages as msg
from sttr.realtime.client import Prediction, Subscriber
from sttr.realtime.messages import MessageError, decode

from .test_client import PRED

DEEP_JSON = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_json_nested_too_deep_is_a_message_error():
    with pytest.raises(MessageError, match="RecursionError"):
        decode(DEEP_JSON)


def test_an_empty_msgpack_error_still_says_what_failed():
    pytest.importorskip("msgpack")
    with pytest.raises(MessageError, match=r"undecodable payload \(StackError: no detail\)"):
        decode(b"\x81\xa1a" + b"\x91" * 100_000 + b"\xc0")


def test_the_loop_skips_a_hostile_message_and_goes_on(ctx):
    zmq = pytest.importorskip("zmq")
    pub = ctx.socket(zmq.PUB)
    try:
        pub.bind("inproc://api-client-hostile")
        with Subscriber("inproc://api-client-hostile", topics=[b"pred."], timeout_s=0.05, context=ctx) as sub:
            for _ in range(200):  # past the slow joiner: the subscription must have reached the publisher
                pub.send_multipart([b"pred.x", b"{}"])
                try:
                    sub.recv(0.02)
                except TimeoutError:
                    pass
                if sub.invalid:
                    break
            before = sub.invalid
            pub.send_multipart([b"pred.x", DEEP_JSON])
            pub.send_multipart([b"pred.cam0", msg.encode(PRED)])
            got = sub.recv(5.0)
            assert isinstance(got, Prediction) and got.seq == 7
            assert sub.invalid == before + 1
    finally:
        pub.close(0)


@pytest.mark.parametrize("topics", [None, 5, ["pred.", 5]])
def test_topics_of_the_wrong_type_are_named(ctx, topics):
    with pytest.raises(TypeError, match="topics must be"):
        Subscriber("inproc://api-client-topics", topics=topics, context=ctx)


@pytest.mark.parametrize("timeout_s", [-1, "5", float("nan"), True])
def test_a_timeout_that_is_not_seconds_is_refused(ctx, timeout_s):
    with pytest.raises(ValueError, match="timeout_s must be a number of seconds >= 0"):
        Subscriber("inproc://api-client-timeout", timeout_s=timeout_s, context=ctx)
    with Subscriber("inproc://api-client-timeout", context=ctx) as sub:
        with pytest.raises(ValueError, match="timeout_s must be"):
            sub.recv(timeout_s)


def test_a_closed_subscriber_says_so(ctx):
    sub = Subscriber("inproc://api-client-closed", context=ctx)
    sub.close()
    with pytest.raises(RuntimeError, match="is closed"):
        sub.recv(0.01)
    sub.close()


def test_a_subscriber_that_fails_to_start_leaves_no_socket_open():
    zmq = pytest.importorskip("zmq")
    context = zmq.Context()
    with pytest.raises((ValueError, TypeError)) as caught:
        Subscriber("inproc://api-client-leak", rcvhwm="many", context=context)
    # term() waits for every socket of the context; the traceback (kept here, as a debugger or a log handler keeps
    # it) holds the half-made Subscriber, so a socket it left open would hang term()
    assert caught.tb is not None and _terminates(context), "a socket of the failed Subscriber was left open"


def _terminates(context, timeout_s: float = 5.0) -> bool:
    import threading

    done = threading.Thread(target=context.term, daemon=True)
    done.start()
    done.join(timeout_s)
    return not done.is_alive()
