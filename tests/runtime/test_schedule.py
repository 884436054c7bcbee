"""Single flight and the timers, with a fake pass function and real threads and clocks."""

from __future__ import annotations

import threading
import time

import pytest

from controller.runtime.schedule import PassRequest, SingleFlight, Timers, jitter_for


class RecordingPass:
    """A pass function that takes `duration` seconds and records each request it served."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.requests: list[PassRequest] = []
        self.started = threading.Event()
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def __call__(self, request: PassRequest) -> None:
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.started.set()
        time.sleep(self.duration)
        with self._lock:
            self.concurrent -= 1
            self.requests.append(request)


def wait_idle(flight: SingleFlight, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while flight.busy:
        assert time.monotonic() < deadline, "passes did not finish"
        time.sleep(0.01)


def test_one_request_runs_one_pass() -> None:
    work = RecordingPass()
    flight = SingleFlight(work)
    flight.start()
    flight.request("webhook")
    time.sleep(0.05)
    wait_idle(flight)
    flight.stop(1)
    assert work.requests == [PassRequest(frozenset({"webhook"}), False)]


def test_requests_during_a_pass_coalesce_into_exactly_one_more() -> None:
    work = RecordingPass(duration=0.3)
    flight = SingleFlight(work)
    flight.start()
    flight.request("startup")
    assert work.started.wait(2)
    threads = [
        threading.Thread(target=flight.request, args=(f"hook{i}",), kwargs={"full_resync": i == 3})
        for i in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_idle(flight)
    flight.stop(1)
    assert len(work.requests) == 2
    assert work.max_concurrent == 1
    second = work.requests[1]
    assert second.reasons == frozenset(f"hook{i}" for i in range(10))
    assert second.full_resync  # one of them asked for a resync: the merged pass does one


def test_stop_lets_the_pass_in_flight_finish_and_drops_the_pending_one() -> None:
    work = RecordingPass(duration=0.3)
    flight = SingleFlight(work)
    flight.start()
    flight.request("a")
    assert work.started.wait(2)
    flight.request("b")
    assert flight.stop(timeout=2)
    assert [r.reasons for r in work.requests] == [frozenset({"a"})]
    flight.request("after-stop")
    time.sleep(0.05)
    assert len(work.requests) == 1


def test_stop_reports_a_pass_that_outlives_the_grace_period() -> None:
    work = RecordingPass(duration=0.5)
    flight = SingleFlight(work)
    flight.start()
    flight.request("a")
    assert work.started.wait(2)
    assert flight.stop(timeout=0.05) is False


def test_a_failing_pass_does_not_stop_later_passes() -> None:
    calls: list[PassRequest] = []

    def work(request: PassRequest) -> None:
        calls.append(request)
        if len(calls) == 1:
            raise RuntimeError("boom")

    flight = SingleFlight(work)
    flight.start()
    flight.request("a")
    time.sleep(0.1)
    flight.request("b")
    time.sleep(0.1)
    flight.stop(1)
    assert len(calls) == 2


def test_timers_poll_and_resync_at_their_intervals() -> None:
    work = RecordingPass()
    flight = SingleFlight(work)
    flight.start()
    timers = Timers(flight, poll_interval=0.2, resync_interval=0.5)
    timers.start()
    time.sleep(1.15)
    timers.stop()
    wait_idle(flight)
    flight.stop(1)
    polls = sum("poll" in r.reasons for r in work.requests)
    resyncs = sum(r.full_resync for r in work.requests)
    # 5 polls and 2 resyncs on an idle machine; a loaded CI machine may delay a tick.
    assert 3 <= polls <= 6
    assert 1 <= resyncs <= 2


@pytest.mark.parametrize(("interval", "jitter"), [(0.5, 0), (2, 0), (60, 6), (600, 30), (3600, 30)])
def test_jitter_is_a_tenth_of_the_interval_capped_at_30s(interval: float, jitter: int) -> None:
    assert jitter_for(interval) == jitter
