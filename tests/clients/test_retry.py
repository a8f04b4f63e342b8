"""UNAVAILABLE is retried for idempotent calls only (the server comes up while the client waits)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError

from ..server.conftest import start, tiny_scenario


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_idempotent_calls_retry_unavailable_others_do_not(tmp_path: Path) -> None:
    port = _free_port()
    with AllocationClient(f"127.0.0.1:{port}", timeout=5) as client:
        # nothing listens yet: a non-idempotent call fails at once with UNAVAILABLE
        with pytest.raises(AllocationError) as info:
            client.create_scenario("x", tiny_scenario())
        assert info.value.code == grpc.StatusCode.UNAVAILABLE

        holder: dict[str, object] = {}

        def late_start() -> None:
            time.sleep(0.3)
            holder["server"] = start(tmp_path, address=f"127.0.0.1:{port}", workers=1)

        starter = threading.Thread(target=late_start)
        starter.start()
        try:
            # a read retried with backoff reaches the server once it is up: NOT_FOUND, not UNAVAILABLE
            with pytest.raises(AllocationError) as info:
                client.get_scenario("missing")
            assert info.value.code == grpc.StatusCode.NOT_FOUND
        finally:
            starter.join(60)
            server = holder.get("server")
            if server is not None:
                server.stop(grace=0.5)  # type: ignore[attr-defined]


def test_solve_many_waits_its_turn_when_the_queue_is_full(tmp_path: Path) -> None:
    # one worker busy with a 2 s solve, the queue (2) full: a plain submit is refused with
    # RESOURCE_EXHAUSTED and a retry delay; solve_many's submissions, refused alike, wait for
    # the delays the server gives and are admitted once the queue moves, so every one is solved
    from lepton_alloc.models import solve_scenario

    from ..server.conftest import TINY_OPTIMUM, slow_scenario, wait_until

    running = start(tmp_path, workers=1, queue_size=2)
    try:
        with AllocationClient(f"127.0.0.1:{running.port}", timeout=60) as client:
            busy = client.submit(slow_scenario(), time_limit_seconds=2)
            assert wait_until(lambda: client.get_job(busy.job_id).state == "RUNNING", 20)
            waiting = [client.submit(tiny_scenario()) for _ in range(2)]
            with pytest.raises(AllocationError) as info:
                client.submit(tiny_scenario())
            assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and info.value.retry_after is not None
            budgets = (10.0, 3.5, 2.0)
            answers = client.solve_many([(f"b{b}", tiny_scenario(budget=b)) for b in budgets], concurrency=3)
            assert [name for name, _ in answers] == ["b10.0", "b3.5", "b2.0"]
            for (_, answer), budget in zip(answers, budgets):
                assert not isinstance(answer, AllocationError), answer
                assert answer.status == "optimal"
                assert answer.objective_value == pytest.approx(solve_scenario(tiny_scenario(budget=budget)).objective_value)
            assert answers[0][1].objective_value == pytest.approx(TINY_OPTIMUM)  # type: ignore[union-attr]
            assert all(h.result().objective_value == pytest.approx(TINY_OPTIMUM) for h in waiting)
            # each scenario was solved once: the three, the two waiting and the slow one
            jobs, _ = client.list_jobs(page_size=100)
            assert len(jobs) == 6
    finally:
        running.stop(grace=0.5)
