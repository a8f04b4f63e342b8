"""Tests of the persistence layer (real SQLite files under tmp_path; no mocks)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy import exc as sa_exc

from lepton_alloc.server.store import (
    AlreadyExists,
    AuditRecord,
    IdempotencyConflict,
    JobRecord,
    NotFound,
    SCHEMA_VERSION,
    SqliteStore,
    Store,
    StoreUnavailable,
    open_store,
)


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "store.db")


@pytest.fixture
def store(db_url):
    """A store on a fresh database, once SQLite and once PostgreSQL (tests/server/conftest.py)."""
    s = open_store(db_url if "://" in db_url else f"sqlite:///{db_url}")
    yield s
    s.close()


def raw_sql(store, sql, *args):
    """One statement on the store's database from outside the store's methods."""
    with store._engine.begin() as c:
        return c.exec_driver_sql(sql, *args).fetchall()


def job(job_id: str, request_id: str = "", request_hash: str = "h", **kw) -> JobRecord:
    return JobRecord(job_id=job_id, state="QUEUED", request_id=request_id, request_hash=request_hash,
                     scenario_name=kw.pop("scenario_name", "s"), scenario_revision=1,
                     scenario_sha256="abc", scenario_json='{"name": "s"}',
                     options_json='{"time_limit_seconds": 10}', created_at=0.0, started_at=None,
                     finished_at=None, result_json=None, error=None, progress_json=None,
                     who=kw.pop("who", "alice"), **kw)


# ------------------------------------------------------------------------------ opening / schema
def test_open_store_urls(tmp_path):
    a = open_store(f"sqlite:///{tmp_path / 'a.db'}")  # absolute path → sqlite:////tmp/...
    b = open_store(str(tmp_path / "b.db"))  # bare path
    m = open_store("sqlite:///:memory:")
    try:
        for s in (a, b, m):
            assert isinstance(s, SqliteStore) and isinstance(s, Store)
        assert os.path.exists(tmp_path / "a.db") and os.path.exists(tmp_path / "b.db")
        m.create_scenario("x", "{}", "h")
        assert m.get_scenario("x").revision == 1
    finally:
        for s in (a, b, m):
            s.close()


@pytest.mark.parametrize("url", ["mysql://u:secret@h/x", "", "sqlite://host/x.db"])
def test_open_store_rejects_unknown_urls(url):
    with pytest.raises(ValueError) as ei:
        open_store(url)
    if url.startswith("mysql"):
        assert "mysql://u:***@h/x" in str(ei.value) and "secret" not in str(ei.value)
    elif url:
        assert url in str(ei.value)


def test_a_typo_in_the_directory_is_an_error_not_a_new_database(tmp_path):
    with pytest.raises(StoreUnavailable, match=f"directory {tmp_path / 'no-such-dir'} does not exist"):
        open_store(str(tmp_path / "no-such-dir" / "store.db"))
    assert not (tmp_path / "no-such-dir").exists()


def test_unreachable_postgresql_is_one_line_naming_it_without_password():
    with pytest.raises(StoreUnavailable) as ei:
        open_store("postgresql://u:secret@127.0.0.1:1/lepton")
    text = str(ei.value)
    assert "postgresql://u:***@127.0.0.1:1/lepton" in text and "secret" not in text and "\n" not in text


def test_damaged_sqlite_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "damaged.db"
    path.write_bytes(b"this is not a database" * 300)
    with pytest.raises(StoreUnavailable, match=f"database {path}"):
        open_store(str(path))
    # a real database with a page overwritten in the middle: the integrity check catches it
    good = tmp_path / "good.db"
    s = open_store(str(good))
    for i in range(300):
        s.create_scenario(f"s{i:04d}", "{}" + " " * 2000, "h")
    s.close()
    raw = sqlite3.connect(good)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    data = bytearray(good.read_bytes())
    page = 4096
    data[page * 3: page * 3 + 200] = b"\xff" * 200
    good.write_bytes(bytes(data))
    with pytest.raises(StoreUnavailable, match=f"database {good}.*damaged|database {good}"):
        open_store(str(good))


def test_wal_sync_foreign_keys_and_schema_version(store, db_url):
    db_path = db_url
    if store.dialect != "sqlite":
        pytest.skip("SQLite settings")
    assert store.schema_version == SCHEMA_VERSION == 3
    # a fresh, independent connection sees the persistent WAL mode
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [(3,)]
    finally:
        raw.close()
    # the store's own connection settings
    assert raw_sql(store, "PRAGMA journal_mode")[0][0] == "wal"
    assert raw_sql(store, "PRAGMA synchronous")[0][0] == 2  # FULL
    assert raw_sql(store, "PRAGMA foreign_keys")[0][0] == 1
    assert raw_sql(store, "PRAGMA busy_timeout")[0][0] == 5000


def test_reopen_does_not_reapply_migrations(db_path):
    open_store(db_path).close()
    s = open_store(db_path)
    try:
        assert s.schema_version == 3
    finally:
        s.close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    raw.close()


def test_newer_schema_is_refused(db_path):
    open_store(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO schema_version VALUES (99, 0)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        open_store(db_path)


# ------------------------------------------------------------------------------------ scenarios
def test_scenario_revisions_kept_and_numbered(store):
    r1 = store.create_scenario("emea-2027", '{"v": 1}', "sha1", description="first")
    assert (r1.name, r1.revision, r1.description, r1.deleted) == ("emea-2027", 1, "first", False)
    assert r1.created_at > 0
    with pytest.raises(AlreadyExists, match="'emea-2027'"):
        store.create_scenario("emea-2027", "{}", "x")
    r2 = store.update_scenario("emea-2027", '{"v": 2}', "sha2")
    r3 = store.update_scenario("emea-2027", '{"v": 3}', "sha3", description="third")
    assert (r2.revision, r3.revision) == (2, 3)
    assert store.get_scenario("emea-2027") == r3
    assert store.get_scenario("emea-2027", 1) == r1
    assert store.get_scenario("emea-2027", revision=2).scenario_json == '{"v": 2}'
    assert [r.revision for r in store.list_revisions("emea-2027")] == [1, 2, 3]
    assert [r.sha256 for r in store.list_revisions("emea-2027")] == ["sha1", "sha2", "sha3"]
    with pytest.raises(NotFound) as ei:
        store.get_scenario("emea-2027", 4)
    assert str(ei.value) == "scenario 'emea-2027' revision 4 not found"
    with pytest.raises(NotFound) as ei:
        store.get_scenario("nope")
    assert str(ei.value) == "scenario 'nope' not found"
    assert isinstance(ei.value, KeyError)
    with pytest.raises(NotFound, match="'nope'"):
        store.update_scenario("nope", "{}", "x")
    with pytest.raises(NotFound, match="'nope'"):
        store.list_revisions("nope")


def test_delete_hides_but_keeps(store):
    store.create_scenario("a", '{"v": 1}', "s1")
    store.update_scenario("a", '{"v": 2}', "s2")
    store.create_scenario("b", "{}", "sb")
    store.delete_scenario("a")

    with pytest.raises(NotFound, match="scenario 'a' not found"):
        store.get_scenario("a")
    with pytest.raises(NotFound, match="scenario 'a' revision 1 not found"):
        store.get_scenario("a", 1)
    with pytest.raises(NotFound):
        store.list_revisions("a")
    with pytest.raises(NotFound):
        store.update_scenario("a", "{}", "x")
    with pytest.raises(NotFound, match="scenario 'a' not found"):
        store.delete_scenario("a")
    with pytest.raises(NotFound):
        store.delete_scenario("never-existed")
    assert [s.name for s in store.list_scenarios()[0]] == ["b"]

    # still in the database
    kept = store.list_revisions("a", include_deleted=True)
    assert [(r.revision, r.deleted) for r in kept] == [(1, True), (2, True)]
    assert store.get_scenario("a", 2, include_deleted=True).scenario_json == '{"v": 2}'
    assert raw_sql(store, "SELECT COUNT(*) FROM scenarios WHERE name = 'a'")[0][0] == 2

    # re-creating starts again at revision 1 (the contract); the deleted life is archived
    r1 = store.create_scenario("a", '{"v": 3}', "s3")
    assert r1.revision == 1 and not r1.deleted
    assert store.get_scenario("a") == r1
    assert [r.revision for r in store.list_revisions("a")] == [1]
    assert [r.revision for r in store.list_revisions("a", include_deleted=True)] == [1]
    archived = store.list_revisions("a#archived-1", include_deleted=True)
    assert [(r.revision, r.deleted, r.scenario_json) for r in archived] == [(1, True, '{"v": 1}'), (2, True, '{"v": 2}')]
    assert store.update_scenario("a", "{}", "s4").revision == 2
    listed = store.list_scenarios()[0]
    assert [(s.name, s.revision) for s in listed] == [("a", 2), ("b", 1)]
    store.delete_scenario("a")
    assert store.create_scenario("a", "{}", "s5").revision == 1  # a second re-creation
    assert len(store.list_revisions("a#archived-2", include_deleted=True)) == 2


def test_list_scenarios_pagination_covers_all_exactly_once(store):
    names = [f"sc-{i:03d}" for i in range(23)]
    for n in reversed(names):
        store.create_scenario(n, "{}", "h")
    store.update_scenario("sc-005", '{"v": 2}', "h2")
    store.delete_scenario("sc-010")
    expected = [n for n in names if n != "sc-010"]

    seen, token, pages = [], "", 0
    while True:
        page, token = store.list_scenarios(page_size=5, page_token=token)
        pages += 1
        assert len(page) <= 5
        seen.extend(page)
        if not token:
            break
    assert [s.name for s in seen] == expected  # ordered by name, each exactly once
    assert pages == 5  # 22 items in pages of 5; no empty trailing page
    assert {s.name: s.revision for s in seen}["sc-005"] == 2  # latest revision

    # page_size is clamped to 1..1000
    one, tok = store.list_scenarios(page_size=0)
    assert len(one) == 1 and tok
    allp, tok = store.list_scenarios(page_size=10**6)
    assert len(allp) == 22 and tok == ""
    with pytest.raises(ValueError, match="page_token"):
        store.list_scenarios(page_token="not-a-token!!")
    assert store.list_scenarios(page_size=50, page_token="")[1] == ""


# ------------------------------------------------------------------------------------------ jobs
def test_create_and_get_job(store):
    j, created = store.create_job(job("j1"))
    assert created and j.state == "QUEUED" and j.job_id == "j1" and j.created_at > 0
    assert store.get_job("j1") == j
    assert j.who == "alice" and j.options_json == '{"time_limit_seconds": 10}'
    with pytest.raises(NotFound) as ei:
        store.get_job("zzz")
    assert str(ei.value) == "job 'zzz' not found"
    with pytest.raises(AlreadyExists, match="'j1'"):
        store.create_job(job("j1"))
    # a state passed by the caller is ignored: new jobs are QUEUED
    j2, _ = store.create_job(JobRecord(job_id="j2", state="SUCCEEDED"))
    assert j2.state == "QUEUED"


def test_idempotency_same_and_different_body(store):
    first, created = store.create_job(job("j1", request_id="r1", request_hash="H1"))
    assert created
    again, created2 = store.create_job(job("j2", request_id="r1", request_hash="H1"))
    assert not created2 and again == first and again.job_id == "j1"
    assert store.find_job_by_request_id("r1") == first
    assert store.find_job_by_request_id("nope") is None
    with pytest.raises(IdempotencyConflict) as ei:
        store.create_job(job("j3", request_id="r1", request_hash="H2"))
    assert str(ei.value) == ("request_id 'r1' was already used with a different request body "
                             "(job j1)")
    with pytest.raises(NotFound):
        store.get_job("j2")
    with pytest.raises(NotFound):
        store.get_job("j3")
    # empty request_id is never deduplicated
    a, ca = store.create_job(job("k1", request_id="", request_hash="H"))
    b, cb = store.create_job(job("k2", request_id="", request_hash="H"))
    assert ca and cb and a.job_id != b.job_id


def _race(create, n=8):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        try:
            barrier.wait()
            results.append(create(i))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def test_concurrent_create_job_same_request_id_shared_store(store):
    results, errors = _race(lambda i: store.create_job(job(f"job-{i}", request_id="r-race", request_hash="H")))
    assert not errors
    assert len(results) == 8
    assert sum(created for _, created in results) == 1
    assert len({j.job_id for j, _ in results}) == 1
    assert len(store.list_jobs(page_size=100)[0]) == 1


def test_concurrent_create_job_same_request_id_separate_connections(db_url):
    open_store(db_url).close()  # schema in place
    stores = [open_store(db_url) for _ in range(8)]
    try:
        results, errors = _race(
            lambda i: stores[i].create_job(job(f"job-{i}", request_id="r-race", request_hash="H")))
        assert not errors
        assert sum(created for _, created in results) == 1
        assert len({j.job_id for j, _ in results}) == 1
    finally:
        for s in stores:
            s.close()
    with open_store(db_url) as s:
        assert raw_sql(s, "SELECT COUNT(*) FROM jobs WHERE request_id = 'r-race'")[0][0] == 1


def test_state_history_order_and_fields(store):
    store.create_job(job("j1"))
    r = store.set_job_state("j1", "RUNNING", started_at=100.0, detail="worker 0")
    assert r.state == "RUNNING" and r.started_at == 100.0 and r.finished_at is None
    store.set_job_progress("j1", '{"gap": 0.5}')
    store.set_job_progress("j1", '{"gap": 0.1}')
    assert store.get_job("j1").progress_json == '{"gap": 0.1}'
    done = store.set_job_state("j1", "SUCCEEDED", result_json='{"objective": 42}', finished_at=200.0,
                               detail="optimal")
    assert (done.state, done.result_json, done.started_at, done.finished_at) == (
        "SUCCEEDED", '{"objective": 42}', 100.0, 200.0)
    assert done.progress_json == '{"gap": 0.1}' and done.error is None
    hist = store.job_history("j1")
    assert [(e.seq, e.state, e.detail) for e in hist] == [
        (1, "QUEUED", "created"), (2, "RUNNING", "worker 0"), (3, "SUCCEEDED", "optimal")]
    assert all(e.job_id == "j1" for e in hist)
    assert [e.at for e in hist] == sorted(e.at for e in hist)
    with pytest.raises(NotFound, match="job 'nope' not found"):
        store.job_history("nope")
    with pytest.raises(NotFound, match="job 'nope' not found"):
        store.set_job_progress("nope", "{}")
    with pytest.raises(NotFound, match="job 'nope' not found"):
        store.set_job_state("nope", "RUNNING")


def test_timestamps_filled_when_omitted(store):
    store.create_job(job("j1"))
    r = store.set_job_state("j1", "RUNNING")
    assert r.started_at is not None
    f = store.set_job_state("j1", "FAILED", error="boom")
    assert f.finished_at is not None and f.error == "boom" and f.started_at == r.started_at


@pytest.mark.parametrize("terminal", ["SUCCEEDED", "FAILED", "CANCELLED"])
def test_terminal_state_guard(store, terminal):
    store.create_job(job("j1"))
    store.set_job_state("j1", terminal)
    for nxt in ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"):
        with pytest.raises(ValueError, match=f"'j1' is already {terminal}"):
            store.set_job_state("j1", nxt)
    assert store.get_job("j1").state == terminal
    assert [e.state for e in store.job_history("j1")] == ["QUEUED", terminal]  # no event added


def test_unknown_state_rejected(store):
    store.create_job(job("j1"))
    with pytest.raises(ValueError, match="unknown job state 'DONE'"):
        store.set_job_state("j1", "DONE")
    with pytest.raises(ValueError, match="unknown job state"):
        store.list_jobs(state="DONE")


def test_list_jobs_pagination_newest_first_and_state_filter(store):
    ids = [f"j{i:02d}" for i in range(17)]
    for i in ids:
        store.create_job(job(i))
    for i in ids[::3]:
        store.set_job_state(i, "RUNNING")

    seen, token = [], ""
    while True:
        page, token = store.list_jobs(page_size=4, page_token=token)
        seen.extend(j.job_id for j in page)
        if not token:
            break
    assert seen == list(reversed(ids))

    running, token = [], ""
    while True:
        page, token = store.list_jobs(state="RUNNING", page_size=2, page_token=token)
        assert all(j.state == "RUNNING" for j in page)
        running.extend(j.job_id for j in page)
        if not token:
            break
    assert running == list(reversed(ids[::3]))
    # tokens are opaque but typed: a scenario token is not a job token, and garbage is refused
    store.create_scenario("a", "{}", "h")
    store.create_scenario("b", "{}", "h")
    scenario_token = store.list_scenarios(page_size=1)[1]
    assert scenario_token
    for bad in (scenario_token, "garbage", "am9iOng="):  # last one: base64 of "job:x"
        with pytest.raises(ValueError, match="page_token"):
            store.list_jobs(page_token=bad)


# --------------------------------------------------------------------------------------- restart
def test_restart_fail_interrupted_jobs(db_path):
    s = open_store(db_path)
    s.create_scenario("emea", '{"v": 1}', "s1")
    s.update_scenario("emea", '{"v": 2}', "s2")
    s.create_scenario("gone", "{}", "g")
    s.delete_scenario("gone")
    s.create_job(job("done", request_id="r-done", request_hash="H"))
    s.set_job_state("done", "RUNNING")
    s.set_job_state("done", "SUCCEEDED", result_json='{"objective": 7}')
    s.create_job(job("queued"))
    s.create_job(job("running"))
    s.set_job_state("running", "RUNNING")
    s.set_job_progress("running", '{"gap": 0.3}')
    s.create_job(job("cancelled"))
    s.set_job_state("cancelled", "CANCELLED")
    aid = s.append_audit(AuditRecord(id=None, at=1.0, who="alice", job_id="done", scenario_sha256="s2",
                                     solver_version="1.2.3", options_json="{}", status="optimal",
                                     objective_value=7.0))
    s.close()

    s = open_store(f"sqlite:///{db_path}")  # the restart
    try:
        failed = s.fail_interrupted_jobs("server restarted while the job was queued or running")
        assert failed == ["queued", "running"]
        for jid in failed:
            j = s.get_job(jid)
            assert j.state == "FAILED"
            assert j.error == "server restarted while the job was queued or running"
            assert j.finished_at is not None
            h = s.job_history(jid)
            assert h[-1].state == "FAILED" and h[-1].detail == j.error
        assert [e.state for e in s.job_history("running")] == ["QUEUED", "RUNNING", "FAILED"]
        assert s.get_job("running").progress_json == '{"gap": 0.3}'
        # finished work untouched
        d = s.get_job("done")
        assert d.state == "SUCCEEDED" and d.result_json == '{"objective": 7}' and d.error is None
        assert s.get_job("cancelled").state == "CANCELLED"
        # idempotency survives the restart
        assert s.create_job(job("other", request_id="r-done", request_hash="H")) == (d, False)
        # scenarios and revisions survive
        assert s.get_scenario("emea").revision == 2
        assert [r.scenario_json for r in s.list_revisions("emea")] == ['{"v": 1}', '{"v": 2}']
        with pytest.raises(NotFound):
            s.get_scenario("gone")
        assert len(s.list_revisions("gone", include_deleted=True)) == 1
        assert [a.id for a in s.list_audit()] == [aid]
        # second call is a no-op
        assert s.fail_interrupted_jobs("again") == []
    finally:
        s.close()


# ----------------------------------------------------------------------------------------- audit
def test_audit_append_only(store):
    ids = [store.append_audit(AuditRecord(id=None, at=0.0, who="bob", job_id=f"j{i}", scenario_sha256="s",
                                          solver_version="1.0", options_json='{"a": 1}', status="optimal",
                                          objective_value=float(i) if i else None))
           for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    recs = store.list_audit()
    assert [r.id for r in recs] == list(reversed(ids))  # newest first
    assert recs[-1].objective_value is None and recs[0].objective_value == 2.0
    assert recs[0].at > 0 and recs[0].who == "bob" and recs[0].options_json == '{"a": 1}'
    assert [r.id for r in store.list_audit(limit=2)] == list(reversed(ids))[:2]
    with pytest.raises(ValueError, match="id=None"):
        store.append_audit(AuditRecord(id=5, status="x"))
    # the interface offers no way to change it (``_insert_audit`` is the insert that
    # append_audit, create_job and set_job_state share)...
    assert not any(n for n in dir(Store) if "audit" in n and n not in ("append_audit", "list_audit", "_insert_audit"))
    # ...and the database itself refuses, from any connection
    with pytest.raises(sa_exc.DBAPIError, match="append-only"):
        raw_sql(store, f"UPDATE audit SET status = 'tampered' WHERE id = {ids[0]}")
    with pytest.raises(sa_exc.DBAPIError, match="append-only"):
        raw_sql(store, "DELETE FROM audit")
    assert [r.status for r in store.list_audit()] == ["optimal"] * 3


def test_a_jobs_audit_records_are_written_with_its_creation_and_its_end(store):
    """The submit's record goes in with the new job (none for an idempotent retry), the end's
    with the move to a terminal state (none when that move is refused), each in the same
    transaction as the change it records."""
    asked = AuditRecord(who="carol", action="submit_solve", status="ok")
    created, new = store.create_job(job("ja", request_id="r1"), audit_record=asked)
    again, new_again = store.create_job(job("jb", request_id="r1"), audit_record=asked)  # the same request
    assert new and not new_again and again.job_id == "ja"
    records = store.list_audit()
    assert [(r.action, r.target, r.who, r.scenario_sha256, r.options_json) for r in records] == [
        ("submit_solve", "ja", "carol", "abc", '{"time_limit_seconds": 10}')]
    assert created == store.get_job("ja")  # the record returned is the row stored

    def ended(j: JobRecord) -> AuditRecord:
        return AuditRecord(who=j.who, job_id=j.job_id, target=j.job_id, action="solve", status=j.state.lower())

    done = store.set_job_state("ja", "SUCCEEDED", result_json="{}", audit_of=ended)
    assert done == store.get_job("ja") and done.state == "SUCCEEDED" and done.lease_until is None
    with pytest.raises(ValueError, match="terminal"):
        store.set_job_state("ja", "FAILED", audit_of=ended)
    assert [(r.action, r.status, r.job_id) for r in store.list_audit()] == [
        ("solve", "succeeded", "ja"), ("submit_solve", "ok", "")]
    assert [e.state for e in store.job_history("ja")] == ["QUEUED", "SUCCEEDED"]


# ------------------------------------------------------------------------------------ durability
def test_process_killed_after_create_scenario_keeps_it(db_path):
    code = textwrap.dedent(f"""
        import os, sys
        from lepton_alloc.server.store import open_store
        s = open_store({db_path!r})
        r = s.create_scenario("crash-safe", '{{"v": 1}}', "sha-c", description="before crash")
        s.update_scenario("crash-safe", '{{"v": 2}}', "sha-c2")
        sys.stdout.write("acknowledged\\n"); sys.stdout.flush()
        os._exit(0)  # no close(), no checkpoint, no atexit
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "acknowledged"
    assert os.path.exists(db_path + "-wal")  # the data lives in the un-checkpointed WAL
    s = open_store(db_path)
    try:
        got = s.get_scenario("crash-safe")
        assert (got.revision, got.scenario_json, got.description) == (2, '{"v": 2}', "")
        assert s.get_scenario("crash-safe", 1).description == "before crash"
    finally:
        s.close()


def test_process_sigkilled_mid_stream_keeps_acknowledged_writes(db_path):
    """The child acknowledges each write on stdout; the parent SIGKILLs it mid-stream."""
    code = textwrap.dedent(f"""
        import sys
        from lepton_alloc.server.store import open_store
        s = open_store({db_path!r})
        i = 0
        while True:
            s.create_scenario(f"s{{i:06d}}", "{{}}", "h")
            sys.stdout.write(f"{{i}}\\n"); sys.stdout.flush()
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 20:
                break
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert acked >= 20
    s = open_store(db_path)
    try:
        names = {x.name for x in s.list_scenarios(page_size=1000)[0]}
        assert all(f"s{i:06d}" in names for i in range(acked + 1))
    finally:
        s.close()


def test_memory_store_and_context_manager():
    with open_store("sqlite:///:memory:") as s:
        s.create_scenario("m", "{}", "h")
        j, _ = s.create_job(job("j"))
        assert s.get_job("j") == j
        t = threading.Thread(target=lambda: s.update_scenario("m", "{}", "h2"))
        t.start()
        t.join()
        assert s.get_scenario("m").revision == 2  # same database from another thread
