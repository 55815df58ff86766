"""The stop protocol shared by the pipeline, the skeleton publisher and the inference service."""
from sttr.realtime.source_loop import SourceLoop


def test_frames_flag_waiting_only_inside_the_source_and_stop_ends_the_loop():
    loop = SourceLoop()
    seen_inside = []

    def source():
        for i in range(10):
            seen_inside.append(loop.waiting_for_source)
            yield i

    got = []
    for frame in loop.frames(source()):
        assert not loop.waiting_for_source  # processing a frame: a signal handler must let it finish
        got.append(frame)
        if frame == 3:
            loop.stop()
    assert got == [0, 1, 2, 3] and loop.stopping
    assert seen_inside == [True] * 4 and not loop.waiting_for_source


def test_frames_end_with_the_source():
    loop = SourceLoop()
    assert list(loop.frames(range(3))) == [0, 1, 2]
    assert not loop.stopping and not loop.waiting_for_source


def test_the_signal_policy_of_the_long_running_commands():
    import pytest

    from sttr.realtime.cli.shutdown import stop_handler

    with pytest.raises(KeyboardInterrupt):  # nothing runs yet
        stop_handler(lambda: None)(2)

    loop = SourceLoop()
    handler = stop_handler(lambda: loop)
    handler(15)  # first signal: a clean stop after the current frame
    assert loop.stopping
    with pytest.raises(KeyboardInterrupt):  # second signal: abort
        handler(2)

    blocked = SourceLoop()
    blocked.waiting_for_source = True  # inside a camera or socket that delivers nothing
    with pytest.raises(KeyboardInterrupt):
        stop_handler(lambda: blocked)(2)
    assert blocked.stopping

    waiting = SourceLoop()
    waiting.running = False  # e.g. still waiting for a subscriber before its run
    with pytest.raises(KeyboardInterrupt):
        stop_handler(lambda: waiting)(2)
    assert waiting.stopping


def test_run_until_stopped_delivers_at_a_normal_end_and_closes_after_an_abort():
    from sttr.realtime.cli.shutdown import DELIVER_LAST_S, run_until_stopped

    class Publisher:
        lingers = []

        def close(self, linger_s=0.0):
            self.lingers.append(linger_s)

    class Loop(SourceLoop):
        stats = "stats so far"

    closed = []
    pub, loop = Publisher(), Loop()
    assert run_until_stopped(lambda: "done", lambda: loop, pub, lambda: closed.append(1)) == "done"
    assert pub.lingers == [DELIVER_LAST_S] and closed == [1]

    def aborted():
        raise KeyboardInterrupt

    pub.lingers.clear()
    assert run_until_stopped(aborted, lambda: loop, pub, lambda: closed.append(2)) == "stats so far"
    assert pub.lingers == [] and closed == [1, 2]  # an abort does not wait on subscribers
    assert run_until_stopped(aborted, lambda: None, None, lambda: closed.append(3)) is None
