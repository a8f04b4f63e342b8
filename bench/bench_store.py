"""The store's share of a solve: what a job's three transactions cost the server.

A unary ``Solve`` costs the store three transactions (server/store.py): the job created with
its submit audit record, the claim (QUEUED -> RUNNING), and the end with its result and audit
record. This runs exactly those calls, ``create_job`` / ``claim_job`` / ``set_job_state``, in a
loop on a real store, with the JSON of a real small scenario and of its result (the 10-market
scenario of bench_load), and reports per job the process CPU time (user + system), the wall
time and the SQL statements sent (a SQLAlchemy listener). On PostgreSQL the CPU column is this
process's only (the database server's is not counted).

    .venv/bin/python bench/bench_store.py [--jobs 400] [--postgres URL] [--out FILE]

Stores: a SQLite file in a temporary directory (the server's default: WAL, synchronous=FULL),
SQLite ``:memory:`` (the same SQL without the file), and PostgreSQL when ``--postgres`` or
``LEPTON_TEST_POSTGRES`` names one (``.ci/ensure-postgres`` starts one).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_build import machine_lines, report_header  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(url: str, jobs: int, scenario_json: str, result_json: str) -> dict[str, float]:
    from sqlalchemy import event

    from lepton_alloc.server.store import AuditRecord, JobRecord, open_store

    store = open_store(url)
    statements = [0]
    event.listen(store._engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    owner = f"bench-{uuid.uuid4().hex[:8]}"

    def one_job() -> None:
        job_id = uuid.uuid4().hex
        store.create_job(JobRecord(job_id=job_id, scenario_sha256="0" * 64, scenario_json=scenario_json,
                                   options_json='{"time_limit_seconds": 30}', who="bench", owner=owner),
                         lease_seconds=30.0, audit_record=AuditRecord(who="bench", action="submit_solve"))
        store.claim_job(job_id, owner, 30.0)
        store.set_job_state(job_id, "SUCCEEDED", result_json=result_json, owner=owner,
                            audit_of=lambda j: AuditRecord(who="bench", job_id=j.job_id, status="optimal",
                                                           objective_value=1.0, action="solve", target=j.job_id))

    for _ in range(20):  # warm: connections, compiled statements
        one_job()
    statements[0] = 0
    cpu0, wall0 = _cpu(), time.perf_counter()
    for _ in range(jobs):
        one_job()
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    store.close()
    return {"cpu_ms": 1000 * cpu / jobs, "wall_ms": 1000 * wall / jobs, "statements": statements[0] / jobs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=400)
    p.add_argument("--postgres", default=os.environ.get("LEPTON_TEST_POSTGRES", ""))
    p.add_argument("--out", default=str(HERE / "results" / "store.md"))
    args = p.parse_args(argv)
    from bench_grpc import small_scenario

    from lepton_alloc.models import solve_scenario

    sc = small_scenario()
    scenario_json, result_json = sc.canonical_json(), solve_scenario(sc).to_json()
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    stores = [("SQLite file (WAL, synchronous=FULL)", str(tmp / "store.db")), ("SQLite :memory:", ":memory:")]
    if args.postgres:
        stores.append(("PostgreSQL (local)", args.postgres))
    rows = []
    for name, url in stores:
        m = measure(url, args.jobs, scenario_json, result_json)
        rows.append((name, m))
        print(f"[bench] {name}: {m['cpu_ms']:.2f} ms CPU, {m['wall_ms']:.2f} ms wall, {m['statements']:.0f} statements",
              file=sys.stderr)
    lines = report_header(
        "The store's share of a solve",
        f"A job's three transactions as a unary `Solve` makes them (create with its audit record, claim, end "
        f"with the result and its audit record), {args.jobs} jobs in a loop after 20 to warm up, one thread; "
        f"the scenario's JSON {len(scenario_json):,} bytes and the result's {len(result_json):,} bytes (the "
        "10-market scenario of bench_load and its solved result). *CPU* = this process's user + system time "
        "(on PostgreSQL the database server's is not counted).") + [
        "| store | CPU ms / job | wall ms / job | SQL statements / job |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {m['cpu_ms']:.2f} | {m['wall_ms']:.2f} | {m['statements']:.0f} |" for name, m in rows]
    lines += machine_lines()
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
