"""The asyncio client against a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from lepton_alloc.clients.client import AllocationError, AsyncAllocationClient

from ..server.conftest import TINY_OPTIMUM, start, tiny_scenario


def test_async_client_round_trip(tmp_path: Path) -> None:
    running = start(tmp_path, workers=1)

    async def scenario() -> None:
        async with AsyncAllocationClient(f"127.0.0.1:{running.port}", timeout=60) as c:
            result = await c.solve(tiny_scenario())
            assert result.objective_value == pytest.approx(TINY_OPTIMUM)
            job = await c.submit(tiny_scenario(), request_id="async-1")
            kinds = [ev.kind async for ev in c.watch(job.job_id)]
            assert kinds[0] == "state" and kinds[-1] == "done"
            assert (await c.get_job(job.job_id)).state == "SUCCEEDED"
            jobs, _ = await c.list_jobs(state="succeeded")
            assert job.job_id in {j.job_id for j in jobs}
            stored = await c.create_scenario("a", tiny_scenario())
            assert (await c.update_scenario("a", tiny_scenario(budget=5))).revision == stored.revision + 1
            assert (await c.get_scenario("a", revision=1)).scenario == tiny_scenario()
            assert [s.name for s in (await c.list_scenarios())[0]] == ["a"]
            await c.delete_scenario("a")
            with pytest.raises(AllocationError) as info:
                await c.get_scenario("a")
            assert info.value.code == grpc.StatusCode.NOT_FOUND

    try:
        asyncio.run(scenario())
    finally:
        running.stop(grace=0.5)
