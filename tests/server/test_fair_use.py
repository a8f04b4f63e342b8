"""Fair use in the job manager of a real server (real workers, real SQLite file): a tenant at its
queue cap does not block another tenant; a tenant runs at most its share of the workers; a
cancelled waiting job frees its slot at once."""

from __future__ import annotations

import pytest

from lepton_alloc.models.status import JobState
from lepton_alloc.server.jobs import QueueFull, SolveOptions

from .conftest import slow_scenario, start, tiny_scenario, wait_until


@pytest.fixture
def capped(tmp_path):
    running = start(tmp_path, queue_size=6, tenant_max_queued=2, tenant_max_running=1, workers=2)
    yield running
    running.stop(grace=1.0)


def test_a_tenant_at_its_caps_does_not_block_another(capped):
    m = capped.manager
    slow = SolveOptions(time_limit_seconds=60)
    # tenant a: one running (its share of the two workers), two waiting, the third refused
    a_jobs = [m.submit(slow_scenario(seed=s), options=slow, tenant="a")[0].job_id for s in (1, 2, 3)]
    assert wait_until(lambda: m.store.get_job(a_jobs[0]).state == JobState.RUNNING, 30)
    with pytest.raises(QueueFull, match="tenant 'a' has 2 jobs waiting \\(limit 2 per tenant\\)"):
        m.submit(slow_scenario(seed=4), options=slow, tenant="a")
    # a's second job waits although a worker is free: a runs at most one at a time
    assert m.store.get_job(a_jobs[1]).state == JobState.QUEUED
    # tenant b is not blocked: accepted, and run at once on the free worker
    b_job = m.submit(tiny_scenario(), options=SolveOptions(), tenant="b")[0].job_id
    assert wait_until(lambda: m.store.get_job(b_job).state == JobState.SUCCEEDED, 30)
    # cancelling one of a's waiting jobs frees its slot at once (not when the running one ends)
    m.cancel(a_jobs[2], tenant="a")
    assert m.store.get_job(a_jobs[2]).state == JobState.CANCELLED
    assert m.queue_depth() == 1
    again = m.submit(slow_scenario(seed=5), options=slow, tenant="a")[0].job_id
    assert m.store.get_job(again).state == JobState.QUEUED
    # another tenant cannot cancel a's job: it is not found for them
    with pytest.raises(KeyError):
        m.cancel(a_jobs[0], tenant="b")
    for job_id in (a_jobs[0], a_jobs[1], again):
        m.cancel(job_id, tenant="a")
    assert wait_until(lambda: all(m.store.get_job(j).state.terminal for j in a_jobs), 30)
