"""Configuration precedence and graceful draining."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lepton_alloc.clients.client import AllocationClient, AllocationError
from lepton_alloc.server.config import load_config

from .conftest import slow_scenario, start, tiny_scenario, wait_until


def test_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    f = tmp_path / "server.yaml"
    f.write_text("workers: 3\nqueue_size: 7\nmax_time_limit: 99\n")
    cfg = load_config(str(f), {"workers": 5}, env={"LEPTON_QUEUE_SIZE": "9"})
    assert (cfg.workers, cfg.queue_size, cfg.max_time_limit, cfg.grace) == (5, 9, 99.0, 10.0)
    with pytest.raises(ValueError, match="unknown setting 'wokers'"):
        f.write_text("wokers: 3\n")
        load_config(str(f))
    with pytest.raises(ValueError, match="workers"):
        load_config(None, env={"LEPTON_WORKERS": "many"})


def test_time_limit_is_capped_by_the_server(tmp_path: Path) -> None:
    running = start(tmp_path, workers=1, max_time_limit=1.5)
    try:
        with AllocationClient(f"127.0.0.1:{running.port}") as c:
            result = c.solve(slow_scenario(), time_limit_seconds=1000)
            assert result.status in ("feasible", "no_solution")
            assert result.timings.solver_seconds < 10
    finally:
        running.stop(grace=0.5)


def test_drain_refuses_new_work_and_reports_not_serving(tmp_path: Path) -> None:
    running = start(tmp_path, workers=1, grace=0.5)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    health = health_pb2_grpc.HealthStub(channel)
    with AllocationClient(f"127.0.0.1:{running.port}") as c:
        job = c.submit(slow_scenario())
        assert wait_until(lambda: c.get_job(job.job_id).state == "RUNNING", 20)
        import threading

        stopper = threading.Thread(target=running.stop, kwargs={"grace": 0.5})
        stopper.start()
        assert wait_until(lambda: running.manager.draining, 5)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(AllocationError) as info:
            c.submit(tiny_scenario())
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        stopper.join(20)
    assert not stopper.is_alive()
    channel.close()
