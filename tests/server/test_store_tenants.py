"""The store's tenants, API tokens, job leases and take-over, schema upgrade and server lock,
on SQLite and PostgreSQL (real databases; tests/server/conftest.py makes them)."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest

from lepton_alloc.server.store import (
    SCHEMA_VERSION,
    AuditRecord,
    JobRecord,
    NotFound,
    StoreUnavailable,
    open_store,
)

from .conftest import legacy_sqlite


@pytest.fixture
def store(db_url):
    s = open_store(db_url)
    yield s
    s.close()


def job(job_id: str, tenant: str = "local", request_id: str = "", owner: str = "", **kw) -> JobRecord:
    return JobRecord(job_id=job_id, request_id=request_id, request_hash=kw.pop("request_hash", "h"),
                     tenant=tenant, owner=owner, scenario_json="{}", **kw)


def test_tenants_see_only_their_own_scenarios_jobs_and_audit(store):
    store.create_scenario("emea", '{"a": 1}', "s", tenant="acme")
    store.create_scenario("emea", '{"b": 2}', "t", tenant="globex")  # same name, another tenant: no clash
    assert store.get_scenario("emea", tenant="acme").scenario_json == '{"a": 1}'
    assert store.get_scenario("emea", tenant="globex").scenario_json == '{"b": 2}'
    store.create_scenario("only-acme", "{}", "u", tenant="acme")
    with pytest.raises(NotFound):
        store.get_scenario("only-acme", tenant="globex")
    with pytest.raises(NotFound):
        store.update_scenario("only-acme", "{}", "v", tenant="globex")
    with pytest.raises(NotFound):
        store.delete_scenario("only-acme", tenant="globex")
    with pytest.raises(NotFound):
        store.list_revisions("only-acme", tenant="globex")
    assert [s.name for s in store.list_scenarios(tenant="globex")[0]] == ["emea"]
    assert [s.name for s in store.list_scenarios(tenant="acme")[0]] == ["emea", "only-acme"]

    store.create_job(job("ja", tenant="acme", request_id="r1"))
    with pytest.raises(NotFound):
        store.get_job("ja", tenant="globex")
    with pytest.raises(NotFound):
        store.job_history("ja", tenant="globex")
    with pytest.raises(NotFound):
        store.request_cancel("ja", tenant="globex")
    assert store.get_job("ja", tenant="acme").tenant == "acme"
    assert store.list_jobs(tenant="globex")[0] == []
    # request ids are per tenant: the same id in another tenant is another job, not a conflict
    other, created = store.create_job(job("jb", tenant="globex", request_id="r1", request_hash="different"))
    assert created and other.job_id == "jb"
    assert store.find_job_by_request_id("r1", tenant="globex").job_id == "jb"
    assert store.find_job_by_request_id("r1", tenant="acme").job_id == "ja"

    store.append_audit(AuditRecord(who="acme/alice", tenant="acme", action="create_scenario", target="emea"))
    store.append_audit(AuditRecord(who="globex/bob", tenant="globex", action="cancel_job", target="jb"))
    assert [(a.who, a.action, a.target) for a in store.list_audit(tenant="acme")] == [
        ("acme/alice", "create_scenario", "emea")]
    assert len(store.list_audit()) == 2


def test_tokens_are_stored_hashed_verified_and_revoked(store):
    rec, secret = store.create_token("acme", "ci-bot")
    assert secret.startswith(f"lep.{rec.token_id}.")
    assert store.verify_token(secret) == rec
    with store._engine.connect() as c:
        stored = [tuple(r) for r in c.exec_driver_sql("SELECT * FROM api_tokens").fetchall()]
    assert not any(secret.split(".")[2] in str(v) for row in stored for v in row)  # only the hash
    for wrong in ("", "nonsense", secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x",
                  f"lep.{'0' * 16}.{secret.split('.')[2]}"):
        assert store.verify_token(wrong) is None
    assert [t.name for t in store.list_tokens("acme")] == ["ci-bot"]
    assert store.list_tokens("globex") == []
    revoked = store.revoke_token(rec.token_id)
    assert revoked.revoked_at is not None
    assert store.verify_token(secret) is None
    with pytest.raises(NotFound):
        store.revoke_token("0" * 16)
    with pytest.raises(ValueError, match="tenant"):
        store.create_token("bad tenant!", "x")


def test_a_claimed_job_runs_once_and_leases_decide_take_over(db_url):
    a, b = open_store(db_url), open_store(db_url)  # two servers' connections
    now = [1000.0]
    a._clock = b._clock = lambda: now[0]
    try:
        a.create_job(job("q1", owner="A"), lease_seconds=30)
        a.create_job(job("r1", owner="A"), lease_seconds=30)
        assert b.claim_job("q1", "B", 30) is None  # not B's to run
        assert a.claim_job("r1", "A", 30).state == "RUNNING"
        assert a.claim_job("r1", "A", 30) is None  # never twice
        # before the lease ends, nobody takes anything over
        assert b.take_over_expired("B", 30, "server A stopped") == ([], [])
        now[0] += 20
        assert a.renew_leases("A", 30) == []  # the heartbeat keeps them alive
        now[0] += 20
        assert b.take_over_expired("B", 30, "server A stopped") == ([], [])
        # a cancel through server B reaches A at its next heartbeat
        b.request_cancel("r1")
        assert a.renew_leases("A", 30) == ["r1"]
        # A dies (no more heartbeats): after the lease, B fails the running job (its solve was half
        # done; cancel was asked, so it ends CANCELLED) and takes over the queued one
        now[0] += 31
        failed, taken = b.take_over_expired("B", 30, "server A stopped answering")
        assert failed == ["r1"] and [j.job_id for j in taken] == ["q1"]
        assert b.get_job("r1").state == "CANCELLED" and b.get_job("r1").error == "server A stopped answering"
        assert b.get_job("q1").owner == "B" and b.get_job("q1").state == "QUEUED"
        assert b.claim_job("q1", "B", 30).state == "RUNNING"
        # A comes back late and tries to finish what is no longer its own
        with pytest.raises(ValueError):
            a.set_job_state("q1", "SUCCEEDED", owner="A")
        with pytest.raises(ValueError, match="terminal"):
            a.set_job_state("r1", "SUCCEEDED", owner="A")
        assert [e.state for e in b.job_history("q1")] == ["QUEUED", "QUEUED", "RUNNING"]
    finally:
        a.close()
        b.close()


def test_list_pages_stop_before_max_bytes_and_cover_everything(store):
    for i in range(6):
        store.create_scenario(f"s{i}", "x" * 1000, "h", description="d" * 500)
    seen, token, pages = [], "", 0
    while True:
        items, token = store.list_scenarios(page_size=100, page_token=token, max_bytes=4000)
        assert 1 <= len(items) <= 2
        seen += [s.name for s in items]
        pages += 1
        if not token:
            break
    assert seen == [f"s{i}" for i in range(6)] and pages == 3
    for i in range(5):
        store.create_job(job(f"j{i}", result_json="r" * 3000))
    items, token = store.list_jobs(page_size=100, max_bytes=8000)
    assert len(items) == 2 and token


@pytest.mark.parametrize("raw", ["job:9223372036854775808", "job:-1", "job:abc", "scenario:x", "job:" + "9" * 40])
def test_crafted_page_tokens_are_value_errors(store, raw):
    token = base64.urlsafe_b64encode(raw.encode()).decode()
    with pytest.raises(ValueError, match="page_token"):
        store.list_jobs(page_token=token)
    with pytest.raises(ValueError, match="page_token"):
        store.list_scenarios(page_token=base64.urlsafe_b64encode(b"job:1").decode())


def test_a_version_2_sqlite_file_is_upgraded_keeping_its_data(tmp_path):
    path = tmp_path / "v2.db"
    legacy_sqlite(path, 2,
                  "INSERT INTO scenarios (name, revision, scenario_json, sha256, created_at) VALUES ('old', 1, '{}', 'h', 1)",
                  "INSERT INTO jobs (job_id, state, request_id, created_at) VALUES ('j-old', 'SUCCEEDED', 'r-old', 1)",
                  "INSERT INTO audit (at, who, job_id, status) VALUES (1, 'someone', 'j-old', 'optimal')")
    s = open_store(str(path))
    try:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get_scenario("old").tenant == "local"
        assert s.get_job("j-old", tenant="local").state == "SUCCEEDED"
        assert s.find_job_by_request_id("r-old").job_id == "j-old"
        assert s.list_audit()[0].who == "someone"
        s.create_scenario("old", "{}", "h2", tenant="acme")  # tenants work on the upgraded file
        rec, secret = s.create_token("acme", "t")
        assert s.verify_token(secret) == rec
    finally:
        s.close()


def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path):
    path = str(tmp_path / "one.db")
    first = open_store(path)
    first.lock_for_server()
    code = textwrap.dedent(f"""
        from lepton_alloc.server.store import open_store, StoreUnavailable
        s = open_store({path!r})
        try:
            s.lock_for_server()
        except StoreUnavailable as err:
            print(err)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert f"database {path} is already used by another server" in out and "PostgreSQL" in out
        # an admin tool (not a server) may still open the file, e.g. to create a token
        with open_store(path) as admin:
            admin.create_token("acme", "t")
    finally:
        first.close()
    again = open_store(path)  # the lock went with the first server
    again.lock_for_server()
    again.close()


def test_unreachable_or_damaged_database_stops_the_server_with_one_line(tmp_path):
    from lepton_alloc.server.app import start_server
    from lepton_alloc.server.config import load_config

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    for database, expected in ((str(bad), f"database {bad}"),
                               (str(tmp_path / "typo" / "x.db"), "does not exist")):
        with pytest.raises(StoreUnavailable, match=expected):
            start_server(load_config(None, {"address": "127.0.0.1:0", "database": database, "workers": 1}, env={}))
