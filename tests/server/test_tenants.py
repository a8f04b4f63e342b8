"""Tenants through the service (issue 11): every RPC of tenant B tried against tenant A's
scenarios, jobs, sweeps and request ids answers NOT_FOUND or acts on B's own records; lists never
show A's; the audit names the authenticated caller, never a header. Real server, real tokens
(created in its database), real solves."""

from __future__ import annotations

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError
from lepton_alloc.server.store import open_store

from .conftest import start, tiny_scenario


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tenants")
    running = start(tmp)
    secrets = {}
    with open_store(str(tmp / "lepton.db")) as admin:  # an operator's `lepton-alloc tokens create`
        for tenant in ("acme", "globex"):
            secrets[tenant] = admin.create_token(tenant, f"{tenant}-bot")[1]
    clients = {t: AllocationClient(f"127.0.0.1:{running.port}", timeout=60,
                                   metadata=[("authorization", f"Bearer {s}"), ("x-lepton-user", "mallory")])
               for t, s in secrets.items()}
    yield running, clients["acme"], clients["globex"]
    for c in clients.values():
        c.close()
    running.stop(grace=1.0)


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(AllocationError) as ei:
        fn()
    return ei.value.code


def test_tenant_b_cannot_touch_tenant_a(two_tenants):
    running, a, b = two_tenants
    a.create_scenario("plan", tiny_scenario(), description="acme's plan")
    job = a.submit(tiny_scenario(), request_id="acme-req-1")
    result = job.result(timeout=60)
    assert result.objective_value == pytest.approx(23.0)
    other = a.submit(tiny_scenario(budget=5.0))
    other.result(timeout=60)
    sweep = a.submit_sweep({"grid": [{"path": "budget.limit", "how": "set", "values": [8.0, 12.0]}]}, tiny_scenario())

    not_found = grpc.StatusCode.NOT_FOUND
    # stored scenarios: read, revisions, update, delete, solve by reference
    assert _code(lambda: b.get_scenario("plan")) == not_found
    assert _code(lambda: b.get_scenario("plan", revision=1)) == not_found
    assert _code(lambda: b.update_scenario("plan", tiny_scenario(budget=1.0))) == not_found
    assert _code(lambda: b.delete_scenario("plan")) == not_found
    assert _code(lambda: b.solve(scenario_name="plan")) == not_found
    assert _code(lambda: b.submit(scenario_name="plan")) == not_found
    assert [s.name for s in b.list_scenarios()[0]] == []
    # jobs: read, list, cancel, watch, explain, compare
    for fn in (lambda: b.get_job(job.job_id), lambda: b.cancel(job.job_id), lambda: list(b.watch(job.job_id)),
               lambda: b.explain(job.job_id, time_budget_seconds=5), lambda: b.compare(job.job_id, other.job_id)):
        assert _code(fn) == not_found
    assert b.list_jobs()[0] == []
    # sweeps: read and re-attach
    assert _code(lambda: b.get_sweep(sweep.job_id)) == not_found
    assert _code(lambda: list(b.watch_sweep(sweep.job_id))) == not_found
    # request ids are per tenant: B's "acme-req-1" is B's own new job, never A's job or a conflict
    mine = b.submit(tiny_scenario(budget=7.0), request_id="acme-req-1")
    assert mine.job_id != job.job_id
    # B's own scenario of the same name is B's; A's is untouched
    b.create_scenario("plan", tiny_scenario(budget=3.0), description="globex's plan")
    assert a.get_scenario("plan").description == "acme's plan"
    assert b.get_scenario("plan").description == "globex's plan"
    assert {j.job_id for j in a.list_jobs(page_size=100)[0]} >= {job.job_id, other.job_id, sweep.job_id}
    assert mine.job_id not in {j.job_id for j in a.list_jobs(page_size=100)[0]}
    mine.result(timeout=60)

    # the audit: every state-changing call, by the authenticated identity, never the header
    audit = running.store.list_audit(limit=100, tenant="acme")
    actions = {(r.action, r.target.split("@")[0]) for r in audit}
    assert ("create_scenario", "plan") in actions and ("submit_solve", job.job_id) in actions
    assert ("submit_sweep", sweep.job_id) in actions
    assert all("mallory" not in r.who and r.who.startswith("acme") for r in audit), {r.who for r in audit}
    b.delete_scenario("plan")
    assert ("delete_scenario", "plan") in {(r.action, r.target) for r in running.store.list_audit(tenant="globex")}
