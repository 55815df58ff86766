"""Fixtures shared by the realtime tests."""
import pytest


@pytest.fixture
def ctx():
    """A ZeroMQ context of the test's own, terminated after it (every socket must be closed by then)."""
    zmq = pytest.importorskip("zmq")
    context = zmq.Context()
    yield context
    context.term()
