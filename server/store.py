"""Persistence layer of the solve service: scenarios (with revisions), jobs (with state history)
and an append-only audit log.

Callers depend only on the :class:`Store` protocol and obtain an implementation from
:func:`open_store`; today that is :class:`SqliteStore` (standard-library ``sqlite3``), a
PostgreSQL implementation can be added behind the same interface by teaching
:func:`open_store` a ``postgresql://`` scheme.

Records are frozen dataclasses of plain Python types; JSON payloads are kept as ``str`` (the store
never parses them). Timestamps are float epoch seconds.

Errors: :class:`NotFound` (a ``KeyError``), :class:`AlreadyExists`, :class:`IdempotencyConflict`
and ``ValueError`` for invalid arguments (unknown job state, leaving a terminal state, bad page
token, unknown store url). Messages name the resource concerned.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import os
import re
import sqlite3
import threading
import time
from abc import abstractmethod
from dataclasses import dataclass
from lepton_alloc.models.status import JobState
from typing import Protocol, runtime_checkable
from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "AlreadyExists", "AuditRecord", "IdempotencyConflict", "JOB_STATES", "JobEvent", "JobRecord",
    "NotFound", "SCHEMA_VERSION", "SqliteStore", "Store", "StoredScenario", "TERMINAL_STATES",
    "open_store",
]

JOB_STATES: tuple[str, ...] = tuple(s.value for s in JobState)
TERMINAL_STATES: frozenset[str] = frozenset(s.value for s in JobState if s.terminal)

MAX_PAGE_SIZE = 1000
MAX_AUDIT_LIMIT = 10000


# ---------------------------------------------------------------------------------------- errors
class NotFound(KeyError):
    """The named resource does not exist (or is soft-deleted)."""

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes
        return str(self.args[0]) if self.args else ""


class AlreadyExists(Exception):
    """A resource with that identity already exists."""


class IdempotencyConflict(Exception):
    """A ``request_id`` was reused with a different request body."""


# --------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class StoredScenario:
    name: str
    revision: int
    scenario_json: str
    sha256: str
    description: str
    created_at: float
    deleted: bool


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: JobState = JobState.QUEUED
    request_id: str = ""
    request_hash: str = ""
    scenario_name: str = ""
    scenario_revision: int = 0
    scenario_sha256: str = ""
    scenario_json: str = ""
    options_json: str = "{}"
    created_at: float = 0.0  # 0 → the store stamps "now" on create_job
    started_at: float | None = None
    finished_at: float | None = None
    result_json: str | None = None
    error: str | None = None
    progress_json: str | None = None
    who: str = ""
    kind: str = "solve"  # "solve" | "sweep"


@dataclass(frozen=True)
class SweepRecord:
    """A sweep job's request (the SweepSpec as JSON), its variant count (the base included), its
    summary once ended, and how many variants have an answer stored."""

    spec_json: str
    total: int
    summary_json: str | None = None
    done: int = 0


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    seq: int
    at: float
    state: JobState
    detail: str


@dataclass(frozen=True)
class AuditRecord:
    id: int | None = None  # assigned by append_audit
    at: float = 0.0  # 0 → the store stamps "now"
    who: str = ""
    job_id: str = ""
    scenario_sha256: str = ""
    solver_version: str = ""
    options_json: str = "{}"
    status: str = ""
    objective_value: float | None = None


# ------------------------------------------------------------------------------------- interface
@runtime_checkable
class Store(Protocol):
    """What the service needs from persistence. Implementations must be thread-safe."""

    # scenarios ---------------------------------------------------------------------------------
    @abstractmethod
    def create_scenario(self, name: str, scenario_json: str, sha256: str,
                        description: str = "") -> StoredScenario:
        """Create a scenario. Revision 1 for a brand-new name; if every earlier revision of the
        name was deleted, a new live series starts that continues the numbering (old revisions
        are kept). Raises AlreadyExists if a live scenario has that name."""

    @abstractmethod
    def update_scenario(self, name: str, scenario_json: str, sha256: str,
                        description: str = "") -> StoredScenario:
        """Add revision n+1 of a live scenario (older revisions kept). NotFound if absent/deleted."""

    @abstractmethod
    def get_scenario(self, name: str, revision: int | None = None, *,
                     include_deleted: bool = False) -> StoredScenario:
        """The latest live revision, or the given revision. NotFound if absent or deleted
        (unless ``include_deleted``)."""

    @abstractmethod
    def list_scenarios(self, page_size: int = 50,
                       page_token: str = "") -> tuple[list[StoredScenario], str]:
        """Latest live revision of each scenario, ordered by name; returns (page, next_page_token)
        where the token is "" on the last page. ``page_size`` is clamped to 1..1000."""

    @abstractmethod
    def list_revisions(self, name: str, *, include_deleted: bool = False) -> list[StoredScenario]:
        """All live revisions of a scenario, oldest first. NotFound if there are none."""

    @abstractmethod
    def delete_scenario(self, name: str) -> None:
        """Soft-delete a scenario: its revisions stay in the database but are hidden from
        get/list. NotFound if absent or already deleted."""

    # jobs --------------------------------------------------------------------------------------
    @abstractmethod
    def create_job(self, job: JobRecord, sweep: SweepRecord | None = None) -> tuple[JobRecord, bool]:
        """Insert a QUEUED job, idempotently on a non-empty ``request_id``: an existing job with
        that request_id and the same ``request_hash`` is returned as (existing, False); a different
        hash raises IdempotencyConflict. Otherwise returns (stored job, True). AlreadyExists if
        the job_id is taken."""

    @abstractmethod
    def get_job(self, job_id: str) -> JobRecord:
        """NotFound if absent."""

    @abstractmethod
    def find_job_by_request_id(self, request_id: str) -> JobRecord | None:
        """The job created with that request_id, or None."""

    @abstractmethod
    def list_jobs(self, state: str | None = None, page_size: int = 50,
                  page_token: str = "") -> tuple[list[JobRecord], str]:
        """Jobs newest first, optionally only those in ``state``; (page, next_page_token)."""

    @abstractmethod
    def set_job_state(self, job_id: str, state: str, *, error: str | None = None,
                      result_json: str | None = None, started_at: float | None = None,
                      finished_at: float | None = None, detail: str = "") -> JobRecord:
        """Move a job to ``state`` and append a history event. ``None`` arguments leave the
        stored value unchanged. ValueError for an unknown state or when the job is already in
        a terminal state. NotFound if absent."""

    @abstractmethod
    def set_job_progress(self, job_id: str, progress_json: str) -> None:
        """Overwrite the job's latest progress snapshot (no history event). NotFound if absent."""

    @abstractmethod
    def job_history(self, job_id: str) -> list[JobEvent]:
        """The job's state events in order (seq ascending). NotFound if the job is absent."""

    @abstractmethod
    def fail_interrupted_jobs(self, reason: str) -> list[str]:
        """At server start: mark every QUEUED/RUNNING job FAILED with ``error=reason`` (and a
        history event); return their ids, oldest first."""

    # sweeps ------------------------------------------------------------------------------------
    @abstractmethod
    def get_sweep(self, job_id: str) -> SweepRecord:
        """A sweep job's request, size, summary and answered count. NotFound if absent."""

    @abstractmethod
    def add_sweep_items(self, job_id: str, phase: str, items: Sequence[tuple[int, str]]) -> None:
        """Store answers ``(variant index, JSON)`` of ``phase`` ('variant' or 'robust') in one transaction."""

    @abstractmethod
    def sweep_items(self, job_id: str, phase: str, after: int = -1, limit: int = 1_000_000) -> list[tuple[int, str]]:
        """Stored answers of ``phase`` with index > ``after``, by index, at most ``limit``."""

    @abstractmethod
    def set_sweep_summary(self, job_id: str, summary_json: str) -> None:
        """Store the sweep's summary. NotFound if absent."""

    # audit -------------------------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, record: AuditRecord) -> int:
        """Append an audit record (its ``id`` must be None); returns the assigned id."""

    @abstractmethod
    def list_audit(self, limit: int = 100) -> list[AuditRecord]:
        """The most recent ``limit`` audit records, newest first."""

    # lifecycle ---------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release resources; idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------ migrations
# Each migration is (version, statements). They are applied in order, each in its own
# transaction together with its schema_version row. Never edit a released migration; append.
_MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE scenarios (
            name          TEXT    NOT NULL,
            revision      INTEGER NOT NULL CHECK (revision >= 1),
            scenario_json TEXT    NOT NULL,
            sha256        TEXT    NOT NULL,
            description   TEXT    NOT NULL DEFAULT '',
            created_at    REAL    NOT NULL,
            deleted       INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
            deleted_at    REAL,
            PRIMARY KEY (name, revision)
        )""",
        "CREATE INDEX scenarios_live ON scenarios (deleted, name, revision)",
        """CREATE TABLE jobs (
            seq               INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id            TEXT    NOT NULL UNIQUE,
            state             TEXT    NOT NULL
                              CHECK (state IN ('QUEUED','RUNNING','SUCCEEDED','FAILED','CANCELLED')),
            request_id        TEXT    NOT NULL DEFAULT '',
            request_hash      TEXT    NOT NULL DEFAULT '',
            scenario_name     TEXT    NOT NULL DEFAULT '',
            scenario_revision INTEGER NOT NULL DEFAULT 0,
            scenario_sha256   TEXT    NOT NULL DEFAULT '',
            scenario_json     TEXT    NOT NULL DEFAULT '',
            options_json      TEXT    NOT NULL DEFAULT '{}',
            created_at        REAL    NOT NULL,
            started_at        REAL,
            finished_at       REAL,
            result_json       TEXT,
            error             TEXT,
            progress_json     TEXT,
            who               TEXT    NOT NULL DEFAULT ''
        )""",
        # idempotency: at most one job per non-empty request_id, enforced by the database
        "CREATE UNIQUE INDEX jobs_request_id ON jobs (request_id) WHERE request_id <> ''",
        "CREATE INDEX jobs_state_seq ON jobs (state, seq)",
        """CREATE TABLE job_events (
            job_id TEXT    NOT NULL REFERENCES jobs (job_id),
            seq    INTEGER NOT NULL CHECK (seq >= 1),
            at     REAL    NOT NULL,
            state  TEXT    NOT NULL,
            detail TEXT    NOT NULL DEFAULT '',
            PRIMARY KEY (job_id, seq)
        )""",
        """CREATE TABLE audit (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            at              REAL NOT NULL,
            who             TEXT NOT NULL DEFAULT '',
            job_id          TEXT NOT NULL DEFAULT '',
            scenario_sha256 TEXT NOT NULL DEFAULT '',
            solver_version  TEXT NOT NULL DEFAULT '',
            options_json    TEXT NOT NULL DEFAULT '{}',
            status          TEXT NOT NULL DEFAULT '',
            objective_value REAL
        )""",
        "CREATE INDEX audit_job ON audit (job_id)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE is not allowed'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE is not allowed'); END""",
    ]),
    (2, [  # sweeps (issue 9): a job of kind 'sweep', its request and its answers, variant by variant
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'solve' CHECK (kind IN ('solve', 'sweep'))",
        """CREATE TABLE sweeps (
            job_id       TEXT    PRIMARY KEY REFERENCES jobs (job_id),
            spec_json    TEXT    NOT NULL,
            total        INTEGER NOT NULL CHECK (total >= 1),
            summary_json TEXT
        )""",
        """CREATE TABLE sweep_items (
            job_id    TEXT    NOT NULL REFERENCES sweeps (job_id),
            phase     TEXT    NOT NULL CHECK (phase IN ('variant', 'robust')),
            idx       INTEGER NOT NULL CHECK (idx >= 0),
            item_json TEXT    NOT NULL,
            PRIMARY KEY (job_id, phase, idx)
        )""",
    ]),
]

SCHEMA_VERSION = _MIGRATIONS[-1][0]

_SCENARIO_COLS = "name, revision, scenario_json, sha256, description, created_at, deleted"
_JOB_COLS = ("job_id, state, request_id, request_hash, scenario_name, scenario_revision, "
             "scenario_sha256, scenario_json, options_json, created_at, started_at, finished_at, "
             "result_json, error, progress_json, who, kind")
_AUDIT_COLS = ("id, at, who, job_id, scenario_sha256, solver_version, options_json, status, "
               "objective_value")


# ------------------------------------------------------------------------------------ page tokens
def _encode_token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode("ascii")


def _decode_token(kind: str, token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError(f"invalid page_token {token!r}") from None
    prefix, sep, value = raw.partition(":")
    if not sep or prefix != kind:
        raise ValueError(f"invalid page_token {token!r}")
    return value


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(n)))


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r} (expected one of {', '.join(JOB_STATES)})")


# ------------------------------------------------------------------------------------ SQLite
class SqliteStore(Store):
    """:class:`Store` on one SQLite database file.

    Durability: the database runs in WAL journal mode with ``synchronous=FULL``, so the WAL is
    fsync'ed on every commit and a write that returned (was acknowledged) survives a process
    crash *and* an OS crash/power loss. Foreign keys are enforced; ``busy_timeout`` makes a
    second process (e.g. an admin tool) wait for the write lock instead of failing.

    Concurrency: **one connection, guarded by a re-entrant lock, opened with
    check_same_thread=False.** Why not one connection per thread:

    * SQLite admits a single writer at a time anyway, so per-thread connections would not add
      write throughput; they would only turn in-process contention into SQLITE_BUSY waits and
      retries. Serialising in-process through a lock is simpler and deterministic.
    * gRPC thread pools create and retire threads; per-thread connections would leak or need
      thread-exit hooks, and :meth:`close` could not reliably close them all.
    * ``:memory:`` databases are private to one connection, so tests get one shared database.
    * Reads are short indexed queries; the solver (seconds to minutes per job) is the
      bottleneck, not the store.

    Every write runs inside ``BEGIN IMMEDIATE … COMMIT`` (the write lock is taken up front, so
    check-then-insert sequences such as idempotent ``create_job`` are race-free even against
    other processes using the same file), and the database adds a unique index on
    ``jobs.request_id`` as a backstop.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        memory = path == ":memory:"
        if not memory:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        # isolation_level=None: no implicit transactions; this class issues BEGIN/COMMIT itself.
        self._conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000.0,
                                     isolation_level=None, check_same_thread=False)
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if not memory and str(mode).lower() != "wal":
                raise RuntimeError(f"could not enable WAL journal mode on {path!r} (got {mode!r})")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # ---------------------------------------------------------------------------- infrastructure
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from the start."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def _migrate(self) -> None:
        with self._write() as c:
            c.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                             version    INTEGER PRIMARY KEY,
                             applied_at REAL NOT NULL)""")
            current = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database {self.path!r} has schema version {current}, newer than this code "
                f"supports ({SCHEMA_VERSION}); upgrade the server")
        for version, statements in _MIGRATIONS:
            with self._write() as c:
                # re-read inside the write lock: another process may have migrated meanwhile
                current = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
                if version <= current:
                    continue
                for sql in statements:
                    c.execute(sql)
                c.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                          (version, self._clock()))

    @property
    def schema_version(self) -> int:
        with self._read() as c:
            return int(c.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # --------------------------------------------------------------------------------- scenarios
    @staticmethod
    def _scenario(row: sqlite3.Row) -> StoredScenario:
        return StoredScenario(
            name=row["name"], revision=int(row["revision"]), scenario_json=row["scenario_json"],
            sha256=row["sha256"], description=row["description"],
            created_at=float(row["created_at"]), deleted=bool(row["deleted"]))

    def _insert_revision(self, c: sqlite3.Connection, name: str, scenario_json: str, sha256: str,
                         description: str) -> StoredScenario:
        last = c.execute("SELECT COALESCE(MAX(revision), 0) FROM scenarios WHERE name = ?",
                         (name,)).fetchone()[0]
        rec = StoredScenario(name=name, revision=int(last) + 1, scenario_json=scenario_json,
                             sha256=sha256, description=description or "",
                             created_at=float(self._clock()), deleted=False)
        c.execute(f"INSERT INTO scenarios ({_SCENARIO_COLS}) VALUES (?, ?, ?, ?, ?, ?, 0)",
                  (rec.name, rec.revision, rec.scenario_json, rec.sha256, rec.description,
                   rec.created_at))
        return rec

    @staticmethod
    def _has_live(c: sqlite3.Connection, name: str) -> bool:
        return c.execute("SELECT 1 FROM scenarios WHERE name = ? AND deleted = 0 LIMIT 1",
                         (name,)).fetchone() is not None

    def create_scenario(self, name: str, scenario_json: str, sha256: str,
                        description: str = "") -> StoredScenario:
        if not name:
            raise ValueError("scenario name must not be empty")
        with self._write() as c:
            if self._has_live(c, name):
                raise AlreadyExists(f"scenario {name!r} already exists")
            self._archive_deleted(c, name)
            return self._insert_revision(c, name, scenario_json, sha256, description)

    @staticmethod
    def _archive_deleted(c: sqlite3.Connection, name: str) -> None:
        """A name created again starts at revision 1 (as the contract says); the revisions of
        its deleted earlier life are kept under ``<name>#archived-<k>``, a name no client can
        take (``#`` is not a store-name character)."""
        if c.execute("SELECT 1 FROM scenarios WHERE name = ? LIMIT 1", (name,)).fetchone() is None:
            return
        archived = c.execute("SELECT COUNT(DISTINCT name) FROM scenarios WHERE name LIKE ? ESCAPE '\\'",
                             (name.replace("_", "\\_").replace("%", "\\%") + "#archived-%",)).fetchone()[0]
        c.execute("UPDATE scenarios SET name = ? WHERE name = ? AND deleted = 1",
                  (f"{name}#archived-{int(archived) + 1}", name))

    def update_scenario(self, name: str, scenario_json: str, sha256: str,
                        description: str = "") -> StoredScenario:
        with self._write() as c:
            if not self._has_live(c, name):
                raise NotFound(f"scenario {name!r} not found")
            return self._insert_revision(c, name, scenario_json, sha256, description)

    def get_scenario(self, name: str, revision: int | None = None, *,
                     include_deleted: bool = False) -> StoredScenario:
        live = "" if include_deleted else " AND deleted = 0"
        with self._read() as c:
            if revision is None:
                row = c.execute(f"SELECT {_SCENARIO_COLS} FROM scenarios WHERE name = ?{live} "
                                "ORDER BY revision DESC LIMIT 1", (name,)).fetchone()
                if row is None:
                    raise NotFound(f"scenario {name!r} not found")
            else:
                row = c.execute(f"SELECT {_SCENARIO_COLS} FROM scenarios "
                                f"WHERE name = ? AND revision = ?{live}",
                                (name, int(revision))).fetchone()
                if row is None:
                    raise NotFound(f"scenario {name!r} revision {revision} not found")
        return self._scenario(row)

    def list_scenarios(self, page_size: int = 50,
                       page_token: str = "") -> tuple[list[StoredScenario], str]:
        size = _clamp(page_size, 1, MAX_PAGE_SIZE)
        after = _decode_token("scenario", page_token) if page_token else None
        where = "deleted = 0" + ("" if after is None else " AND name > ?")
        params: tuple[object, ...] = () if after is None else (after,)
        with self._read() as c:
            rows = c.execute(
                f"""SELECT {', '.join('s.' + col for col in _SCENARIO_COLS.split(', '))}
                    FROM scenarios s
                    JOIN (SELECT name, MAX(revision) AS revision FROM scenarios
                          WHERE {where} GROUP BY name ORDER BY name LIMIT ?) m
                      ON s.name = m.name AND s.revision = m.revision
                    ORDER BY s.name""", (*params, size + 1)).fetchall()
        items = [self._scenario(r) for r in rows[:size]]
        token = _encode_token("scenario", items[-1].name) if len(rows) > size else ""
        return items, token

    def list_revisions(self, name: str, *, include_deleted: bool = False) -> list[StoredScenario]:
        live = "" if include_deleted else " AND deleted = 0"
        with self._read() as c:
            rows = c.execute(f"SELECT {_SCENARIO_COLS} FROM scenarios WHERE name = ?{live} "
                             "ORDER BY revision", (name,)).fetchall()
        if not rows:
            raise NotFound(f"scenario {name!r} not found")
        return [self._scenario(r) for r in rows]

    def delete_scenario(self, name: str) -> None:
        with self._write() as c:
            cur = c.execute("UPDATE scenarios SET deleted = 1, deleted_at = ? "
                            "WHERE name = ? AND deleted = 0", (self._clock(), name))
            if cur.rowcount == 0:
                raise NotFound(f"scenario {name!r} not found")

    # -------------------------------------------------------------------------------------- jobs
    @staticmethod
    def _job(row: sqlite3.Row) -> JobRecord:
        def opt_float(v: object) -> float | None:
            return None if v is None else float(v)  # type: ignore[arg-type]

        return JobRecord(
            job_id=row["job_id"], state=JobState(row["state"]), request_id=row["request_id"],
            request_hash=row["request_hash"], scenario_name=row["scenario_name"],
            scenario_revision=int(row["scenario_revision"]), scenario_sha256=row["scenario_sha256"],
            scenario_json=row["scenario_json"], options_json=row["options_json"],
            created_at=float(row["created_at"]), started_at=opt_float(row["started_at"]),
            finished_at=opt_float(row["finished_at"]), result_json=row["result_json"],
            error=row["error"], progress_json=row["progress_json"], who=row["who"], kind=row["kind"])

    def _job_row(self, c: sqlite3.Connection, job_id: str) -> JobRecord:
        row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"job {job_id!r} not found")
        return self._job(row)

    def _append_event(self, c: sqlite3.Connection, job_id: str, state: str, at: float,
                      detail: str) -> None:
        c.execute("""INSERT INTO job_events (job_id, seq, at, state, detail)
                     SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM job_events WHERE job_id = ?""",
                  (job_id, at, state, detail or "", job_id))

    def create_job(self, job: JobRecord, sweep: SweepRecord | None = None) -> tuple[JobRecord, bool]:
        if not job.job_id:
            raise ValueError("job_id must not be empty")
        with self._write() as c:
            if job.request_id:
                row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE request_id = ?",
                                (job.request_id,)).fetchone()
                if row is not None:
                    existing = self._job(row)
                    if existing.request_hash == job.request_hash:
                        return existing, False
                    raise IdempotencyConflict(
                        f"request_id {job.request_id!r} was already used with a different "
                        f"request body (job {existing.job_id})")
            if c.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone():
                raise AlreadyExists(f"job {job.job_id!r} already exists")
            now = float(self._clock())
            rec = dataclasses.replace(job, state=JobState.QUEUED, created_at=job.created_at or now)
            c.execute(
                f"INSERT INTO jobs ({_JOB_COLS}) VALUES ({', '.join('?' * 17)})",
                (rec.job_id, rec.state, rec.request_id, rec.request_hash, rec.scenario_name,
                 int(rec.scenario_revision), rec.scenario_sha256, rec.scenario_json,
                 rec.options_json, rec.created_at, rec.started_at, rec.finished_at,
                 rec.result_json, rec.error, rec.progress_json, rec.who, rec.kind))
            if sweep is not None:  # in the same transaction: a sweep job never exists without its request
                c.execute("INSERT INTO sweeps (job_id, spec_json, total, summary_json) VALUES (?, ?, ?, NULL)",
                          (rec.job_id, sweep.spec_json, int(sweep.total)))
            self._append_event(c, rec.job_id, "QUEUED", rec.created_at, "created")
            return self._job_row(c, rec.job_id), True

    def get_job(self, job_id: str) -> JobRecord:
        with self._read() as c:
            return self._job_row(c, job_id)

    def find_job_by_request_id(self, request_id: str) -> JobRecord | None:
        if not request_id:
            return None
        with self._read() as c:
            row = c.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE request_id = ?",
                            (request_id,)).fetchone()
        return None if row is None else self._job(row)

    def list_jobs(self, state: str | None = None, page_size: int = 50,
                  page_token: str = "") -> tuple[list[JobRecord], str]:
        if state is not None:
            _check_state(state)
        size = _clamp(page_size, 1, MAX_PAGE_SIZE)
        where: list[str] = []
        params: list[object] = []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if page_token:
            raw = _decode_token("job", page_token)
            if not raw.isdigit():
                raise ValueError(f"invalid page_token {page_token!r}")
            where.append("seq < ?")
            params.append(int(raw))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as c:
            rows = c.execute(f"SELECT seq, {_JOB_COLS} FROM jobs {clause} ORDER BY seq DESC LIMIT ?",
                             (*params, size + 1)).fetchall()
        items = [self._job(r) for r in rows[:size]]
        token = _encode_token("job", str(rows[size - 1]["seq"])) if len(rows) > size else ""
        return items, token

    def set_job_state(self, job_id: str, state: str, *, error: str | None = None,
                      result_json: str | None = None, started_at: float | None = None,
                      finished_at: float | None = None, detail: str = "") -> JobRecord:
        _check_state(state)
        with self._write() as c:
            current = self._job_row(c, job_id)
            if current.state in TERMINAL_STATES:
                raise ValueError(f"job {job_id!r} is already {current.state} (a terminal state) "
                                 f"and cannot move to {state}")
            now = float(self._clock())
            # fill the obvious timestamps when the caller did not, so a terminal job always
            # carries finished_at and a started job started_at
            if started_at is None and state == "RUNNING" and current.started_at is None:
                started_at = now
            if finished_at is None and state in TERMINAL_STATES and current.finished_at is None:
                finished_at = now
            c.execute("""UPDATE jobs SET state = ?,
                                         error = COALESCE(?, error),
                                         result_json = COALESCE(?, result_json),
                                         started_at = COALESCE(?, started_at),
                                         finished_at = COALESCE(?, finished_at)
                         WHERE job_id = ?""",
                      (state, error, result_json, started_at, finished_at, job_id))
            self._append_event(c, job_id, state, now, detail)
            return self._job_row(c, job_id)

    def set_job_progress(self, job_id: str, progress_json: str) -> None:
        # One single-row UPDATE (its own transaction). Note each commit is fsync'ed
        # (synchronous=FULL): callers should throttle progress writes (JobManager does, 1/s).
        with self._write() as c:
            cur = c.execute("UPDATE jobs SET progress_json = ? WHERE job_id = ?",
                            (progress_json, job_id))
            if cur.rowcount == 0:
                raise NotFound(f"job {job_id!r} not found")

    def job_history(self, job_id: str) -> list[JobEvent]:
        with self._read() as c:
            self._job_row(c, job_id)  # NotFound for an unknown job
            rows = c.execute("SELECT job_id, seq, at, state, detail FROM job_events "
                             "WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [JobEvent(job_id=r["job_id"], seq=int(r["seq"]), at=float(r["at"]),
                         state=JobState(r["state"]), detail=r["detail"]) for r in rows]

    def fail_interrupted_jobs(self, reason: str) -> list[str]:
        with self._write() as c:
            ids = [r[0] for r in c.execute(
                "SELECT job_id FROM jobs WHERE state IN ('QUEUED', 'RUNNING') ORDER BY seq")]
            now = float(self._clock())
            for job_id in ids:
                c.execute("""UPDATE jobs SET state = 'FAILED', error = ?,
                                             finished_at = COALESCE(finished_at, ?)
                             WHERE job_id = ?""", (reason, now, job_id))
                self._append_event(c, job_id, "FAILED", now, reason)
        return ids

    # ------------------------------------------------------------------------------------ sweeps
    def get_sweep(self, job_id: str) -> SweepRecord:
        with self._read() as c:
            row = c.execute("SELECT spec_json, total, summary_json FROM sweeps WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"sweep {job_id!r} not found")
            done = c.execute("SELECT COUNT(*) FROM sweep_items WHERE job_id = ? AND phase = 'variant'", (job_id,)).fetchone()[0]
        return SweepRecord(row["spec_json"], int(row["total"]), row["summary_json"], int(done))

    def add_sweep_items(self, job_id: str, phase: str, items: Sequence[tuple[int, str]]) -> None:
        if not items:
            return
        with self._write() as c:
            c.executemany("INSERT OR REPLACE INTO sweep_items (job_id, phase, idx, item_json) VALUES (?, ?, ?, ?)",
                          [(job_id, phase, int(i), text) for i, text in items])

    def sweep_items(self, job_id: str, phase: str, after: int = -1, limit: int = 1_000_000) -> list[tuple[int, str]]:
        with self._read() as c:
            rows = c.execute("SELECT idx, item_json FROM sweep_items WHERE job_id = ? AND phase = ? AND idx > ? "
                             "ORDER BY idx LIMIT ?", (job_id, phase, int(after), int(limit))).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def set_sweep_summary(self, job_id: str, summary_json: str) -> None:
        with self._write() as c:
            if c.execute("UPDATE sweeps SET summary_json = ? WHERE job_id = ?", (summary_json, job_id)).rowcount == 0:
                raise NotFound(f"sweep {job_id!r} not found")

    # ------------------------------------------------------------------------------------- audit
    @staticmethod
    def _audit(row: sqlite3.Row) -> AuditRecord:
        ov = row["objective_value"]
        return AuditRecord(
            id=int(row["id"]), at=float(row["at"]), who=row["who"], job_id=row["job_id"],
            scenario_sha256=row["scenario_sha256"], solver_version=row["solver_version"],
            options_json=row["options_json"], status=row["status"],
            objective_value=None if ov is None else float(ov))

    def append_audit(self, record: AuditRecord) -> int:
        if record.id is not None:
            raise ValueError("append_audit assigns the id; pass an AuditRecord with id=None")
        at = record.at or float(self._clock())
        with self._write() as c:
            cur = c.execute(
                f"INSERT INTO audit ({_AUDIT_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, record.who, record.job_id, record.scenario_sha256, record.solver_version,
                 record.options_json, record.status,
                 None if record.objective_value is None else float(record.objective_value)))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def list_audit(self, limit: int = 100) -> list[AuditRecord]:
        n = _clamp(limit, 1, MAX_AUDIT_LIMIT)
        with self._read() as c:
            rows = c.execute(f"SELECT {_AUDIT_COLS} FROM audit ORDER BY id DESC LIMIT ?",
                             (n,)).fetchall()
        return [self._audit(r) for r in rows]


# --------------------------------------------------------------------------------------- factory
def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host`` before putting a url in a message."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/:@]*):[^/@]*@", r"\1:***@", url)


def open_store(url: str, **kwargs: object) -> Store:
    """Open a store from a url.

    * ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (the SQLAlchemy
      convention: what follows ``sqlite:///`` is the path, so ``f"sqlite:///{abs_path}"`` works);
    * a bare file path (``/var/lib/lepton/store.db``, ``store.db``);
    * ``sqlite:///:memory:``, ``sqlite://`` or ``:memory:`` for a private in-memory database.

    Any other scheme raises ``ValueError`` naming the url (password redacted). Extra keyword
    arguments go to the implementation (e.g. ``busy_timeout_ms``).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"unsupported store url {url!r}: empty")
    if "://" not in url:
        return SqliteStore(url, **kwargs)  # type: ignore[arg-type]
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite":
        raise ValueError(f"unsupported store url {_redact(url)!r}: unknown scheme {scheme!r} "
                         "(supported: sqlite:///path/to/file.db or a bare file path)")
    if rest == "":
        return SqliteStore(":memory:", **kwargs)  # type: ignore[arg-type]
    if not rest.startswith("/"):
        raise ValueError(f"unsupported store url {_redact(url)!r}: sqlite urls take no host; "
                         "write sqlite:///relative.db or sqlite:////absolute/path.db")
    path = rest[1:]
    if not path:
        raise ValueError(f"unsupported store url {url!r}: no database path")
    return SqliteStore(path, **kwargs)  # type: ignore[arg-type]
