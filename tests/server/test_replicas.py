"""Several servers, one database (issue 11's fault tests): servers started as real processes
(`lepton-alloc serve`) on one PostgreSQL database share a burst of submissions without running a
job twice or failing each other's jobs; a server with a free worker takes the work a busy one left
waiting; a cancel through one server stops the other's solve; a server SIGKILLed mid-solve leaves
its jobs to the other after the lease. SQLite admits one server
per file, and a damaged file stops start-up with one line naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lepton_alloc.clients.client import AllocationClient
from lepton_alloc.models.status import JobState
from lepton_alloc.server.store import StoreUnavailable, open_store

from .conftest import fresh_database, slow_scenario, start, tiny_scenario, wait_until

LEASE = 3.0  # seconds: short, so a take-over happens within the test
CLI = [os.path.join(os.path.dirname(sys.executable), "lepton-alloc")]


class ServerProcess:
    """`lepton-alloc serve` in its own process group (its workers die with it on SIGKILL)."""

    def __init__(self, database: str, tmp: Path, name: str, workers: int = 1):
        env = dict(os.environ, LEPTON_LEASE_SECONDS=str(LEASE), LEPTON_KILL_GRACE="1", LEPTON_GRACE="1")
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--address", "127.0.0.1:0", "--database", database, "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        self.port = 0
        lines: list[str] = []
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            lines.append(line)
            if line.startswith("listening on "):
                self.port = int(line.rsplit(":", 1)[1])
                break
        if not self.port:
            raise AssertionError(f"server {name} did not start:\n{''.join(lines)}")
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        self.client = AllocationClient(f"127.0.0.1:{self.port}", timeout=60.0)

    def _drain(self, lines: list[str]) -> None:
        assert self.proc.stderr is not None
        with open(self.log, "w") as fh:
            fh.writelines(lines)
            for line in self.proc.stderr:
                fh.write(line)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def _ran_once(client: AllocationClient, job_id: str) -> bool:
    return [s for s, _, _ in client.get_job(job_id).history].count(JobState.RUNNING) == 1


def test_two_servers_share_a_burst_without_running_a_job_twice(pg_url, tmp_path):
    a = ServerProcess(pg_url, tmp_path, "a", workers=2)
    b = ServerProcess(pg_url, tmp_path, "b", workers=2)
    try:
        submitted: list[str] = []
        errors: list[BaseException] = []

        def burst(server: ServerProcess, k: int) -> None:
            try:
                for i in range(6):
                    sc = tiny_scenario(budget=10.0 + k * 10 + i, name=f"burst-{k}-{i}")
                    submitted.append(server.client.submit(sc).job_id)
                    # the same request id through both servers: one job (idempotency is the database's)
                    submitted.append(server.client.submit(tiny_scenario(), request_id="shared-request").job_id)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=burst, args=(s, k)) for k, s in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        ids = set(submitted)
        assert len(ids) == 12 + 1  # twelve jobs and the one shared request
        assert wait_until(lambda: all(a.client.get_job(j).state.terminal for j in ids), 120, 0.2)
        for job_id in ids:
            job = b.client.get_job(job_id)  # either server answers for every job
            assert job.state == JobState.SUCCEEDED, (job_id, job.state, job.error)
            assert _ran_once(a.client, job_id), job.history
        owners = {b.client.get_job(j).history[1][2].split(" of server ")[-1] for j in ids}
        assert len(owners) == 2  # both servers ran some
    finally:
        a.stop()
        b.stop()


def test_a_cancel_through_one_server_stops_the_others_solve_and_a_new_server_fails_nothing(pg_url, tmp_path):
    a = ServerProcess(pg_url, tmp_path, "a")
    b = None
    try:
        slow = a.client.submit(slow_scenario(), time_limit_seconds=90)
        assert wait_until(lambda: a.client.get_job(slow.job_id).state == JobState.RUNNING, 60, 0.1)
        b = ServerProcess(pg_url, tmp_path, "b")  # a rolling restart's second server
        time.sleep(2 * LEASE)  # several heartbeats of both
        assert b.client.get_job(slow.job_id).state == JobState.RUNNING  # b failed nothing of a's
        b.client.cancel(slow.job_id)
        assert wait_until(lambda: b.client.get_job(slow.job_id).state.terminal, 30, 0.2)
        ended = a.client.get_job(slow.job_id)
        assert ended.state == JobState.CANCELLED
        # a's only worker was freed by the cancel: a new job on a starts before the slow solve's
        # 90 s time limit would have run out (the server's own timestamps)
        after = a.client.submit(tiny_scenario())
        assert after.result(timeout=80).objective_value == pytest.approx(23.0)
        assert a.client.get_job(after.job_id).start_time < ended.start_time + 90
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_a_server_with_a_free_worker_takes_work_another_server_left_waiting(pg_url, tmp_path):
    a = ServerProcess(pg_url, tmp_path, "a")  # one worker, kept busy below
    b = ServerProcess(pg_url, tmp_path, "b", workers=2)
    try:
        slow = a.client.submit(slow_scenario(), time_limit_seconds=90)
        assert wait_until(lambda: a.client.get_job(slow.job_id).state == JobState.RUNNING, 60, 0.1)
        waiting = [a.client.submit(tiny_scenario(name=f"w{i}")) for i in range(3)]  # a cannot start these
        # the unary Solve through a, whose only worker is busy, is answered by b's worker
        assert a.client.solve(tiny_scenario(name="via-a"), timeout=60).objective_value == pytest.approx(23.0)
        for handle in waiting:
            assert handle.result(timeout=60).objective_value == pytest.approx(23.0)  # followed through a
            job = a.client.get_job(handle.job_id)
            assert any("moved to server" in why for _, _, why in job.history), job.history
            assert _ran_once(a.client, handle.job_id)
        assert a.client.get_job(slow.job_id).state == JobState.RUNNING  # a's own solve goes on, untouched
        a.client.cancel(slow.job_id)
        assert wait_until(lambda: a.client.get_job(slow.job_id).state.terminal, 30, 0.2)
    finally:
        a.stop()
        b.stop()


def test_a_server_killed_mid_solve_leaves_its_jobs_to_the_other_after_the_lease(pg_url, tmp_path):
    a = ServerProcess(pg_url, tmp_path, "a")
    b = ServerProcess(pg_url, tmp_path, "b")
    try:
        slow = a.client.submit(slow_scenario(), time_limit_seconds=90)
        assert wait_until(lambda: a.client.get_job(slow.job_id).state == JobState.RUNNING, 60, 0.1)
        queued = [a.client.submit(tiny_scenario(name=f"q{i}")).job_id for i in range(2)]  # behind the slow one
        assert all(a.client.get_job(j).state == JobState.QUEUED for j in queued)
        a.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: b.client.get_job(slow.job_id).state.terminal, 30, 0.2)
        failed = b.client.get_job(slow.job_id)
        assert failed.state == JobState.FAILED and "lease expired" in failed.error
        assert time.monotonic() - killed_at >= LEASE * 0.5  # not before the lease ran out
        assert wait_until(lambda: all(b.client.get_job(j).state.terminal for j in queued), 60, 0.2)
        for job_id in queued:
            job = b.client.get_job(job_id)
            assert job.state == JobState.SUCCEEDED and job.result.objective_value == pytest.approx(23.0)
            # b took them: at once, as a server with free workers, or at the latest after a's lease
            assert any("taken over by server" in why or "moved to server" in why for _, _, why in job.history)
            assert _ran_once(b.client, job_id)
    finally:
        a.stop()
        b.stop()


def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path):
    first = start(tmp_path)
    try:
        with pytest.raises(StoreUnavailable, match="is already used by another server"):
            start(tmp_path)  # the same database file
        with AllocationClient(f"127.0.0.1:{first.port}", timeout=30) as c:  # the first one is unharmed
            assert c.solve(tiny_scenario()).objective_value == pytest.approx(23.0)
    finally:
        first.stop(grace=1.0)


def test_a_damaged_sqlite_file_stops_start_up_with_one_line(tmp_path):
    db = tmp_path / "lepton.db"
    s = open_store(str(db))
    s.create_scenario("kept", "{}", "h")
    s.close()
    data = bytearray(db.read_bytes())
    data[0:16] = b"NOT SQLITE AT AL"  # the header
    db.write_bytes(bytes(data))
    proc = subprocess.run([*CLI, "serve", "--address", "127.0.0.1:0", "--database", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("lepton-alloc serve: cannot start: database ") and str(db) in lines[-1]
    assert "Traceback" not in proc.stderr
    typo = subprocess.run([*CLI, "serve", "--address", "127.0.0.1:0", "--database", str(tmp_path / "tpyo" / "x.db")],
                          capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "does not exist" in typo.stderr and not (tmp_path / "tpyo").exists()


def test_health_says_not_serving_while_the_database_fails(pg_url, tmp_path):
    import grpc
    import psycopg
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    running = start(tmp_path, database=pg_url, workers=1, lease_seconds=LEASE)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def status() -> int:
                return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status

            assert status() == health_pb2.HealthCheckResponse.SERVING
            admin, name = pg_url.rsplit("/", 1)
            with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:  # the database goes away
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            assert wait_until(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, 20, 0.2)
    finally:
        running.stop(grace=1.0)
