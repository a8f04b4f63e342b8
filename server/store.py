"""Persistence layer of the solve service: scenarios (with revisions), jobs (with state history,
owner and lease), sweeps, API tokens and an append-only audit log, each scoped to a tenant.

One code path for both databases through SQLAlchemy Core (:class:`SqlStore`):

* **SQLite** (a file path or ``sqlite:///path``): one server per file. A server takes the file's
  single-writer lock (:meth:`Store.lock_for_server`); a second server on the same file is refused
  with a message naming the file. WAL journal, ``synchronous=FULL``: an acknowledged write survives
  a crash.
* **PostgreSQL** (``postgresql://user:password@host/db``): several server replicas share one
  database. Every job has an owner (a server id) and a lease that its owner renews by heartbeat;
  a job is claimed atomically before it runs, so no job runs twice, and a job is only taken over
  (re-run when it had not started, failed when it had) once its owner's lease has expired.

Records are frozen dataclasses of plain Python types; JSON payloads are kept as ``str`` (the store
never parses them). Timestamps are float epoch seconds.

Tenants: every scenario, job, idempotency key and audit record belongs to a tenant. Methods taking
``tenant`` see only that tenant's records (another tenant's ids are :class:`NotFound`);
``tenant=None`` (internal callers: the job manager, by globally unique job id) sees all.

Errors: :class:`NotFound` (a ``KeyError``), :class:`AlreadyExists`, :class:`IdempotencyConflict`,
:class:`StoreUnavailable` (the database cannot be opened, is damaged, is newer than this code, or is
locked by another server; the message names the database) and ``ValueError`` for invalid
arguments (unknown job state, leaving a terminal state, bad page token, unknown store url).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from lepton_alloc.models.status import JobState

__all__ = [
    "AlreadyExists", "AuditRecord", "DEFAULT_TENANT", "IdempotencyConflict", "JOB_STATES", "JobEvent",
    "JobRecord", "NotFound", "SCHEMA_VERSION", "SqlStore", "SqliteStore", "Store", "StoreUnavailable",
    "StoredScenario", "SweepRecord", "TERMINAL_STATES", "TokenRecord", "open_store",
]

log = logging.getLogger("lepton_alloc.store")

JOB_STATES: tuple[str, ...] = tuple(s.value for s in JobState)
TERMINAL_STATES: frozenset[str] = frozenset(s.value for s in JobState if s.terminal)
_LIVE_STATES = ("QUEUED", "RUNNING")

MAX_PAGE_SIZE = 1000
MAX_AUDIT_LIMIT = 10000
DEFAULT_TENANT = "local"  # anonymous callers on loopback, and records made before tenants existed
TENANT_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOKEN_PATTERN = re.compile(r"lep\.([0-9a-f]{16})\.([A-Za-z0-9_-]{20,100})")


# ---------------------------------------------------------------------------------------- errors
class NotFound(KeyError):
    """The named resource does not exist (or is soft-deleted, or is another tenant's)."""

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes
        return str(self.args[0]) if self.args else ""


class AlreadyExists(Exception):
    """A resource with that identity already exists."""


class IdempotencyConflict(Exception):
    """A ``request_id`` was reused with a different request body."""


class StoreUnavailable(RuntimeError):
    """The database cannot be used: unreachable, damaged, newer than this code, or locked by
    another server. The message is one line naming the database (password redacted)."""


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
    tenant: str = DEFAULT_TENANT


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
    tenant: str = DEFAULT_TENANT
    owner: str = ""  # the server that runs it ("" = none)
    lease_until: float | None = None  # its owner's lease; past it, another server may take the job over
    cancel_requested: bool = False  # set by any server; the owner stops the solve


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
    tenant: str = DEFAULT_TENANT
    action: str = "solve"  # solve | create_scenario | update_scenario | delete_scenario | cancel_job | submit | ...
    target: str = ""  # the scenario name or job id acted on


@dataclass(frozen=True)
class TokenRecord:
    """An API token's public part: its id, tenant and name (the secret is stored only hashed)."""

    token_id: str
    tenant: str
    name: str
    created_at: float
    revoked_at: float | None = None


# ---------------------------------------------------------------------------------------- schema
# The current schema, declared once; both databases are created from it. Older SQLite files
# (versions 1 and 2, before tenants and leases) are brought up to date by _UPGRADES below.
SCHEMA_VERSION = 3

_meta = sa.MetaData()
_Real: sa.Double[float] = sa.Double()
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER

scenarios = sa.Table(
    "scenarios", _meta,
    sa.Column("tenant", sa.Text, nullable=False, server_default=DEFAULT_TENANT),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("scenario_json", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", _Real, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted_at", _Real),
    sa.PrimaryKeyConstraint("tenant", "name", "revision"),
    sa.CheckConstraint("revision >= 1", name="scenarios_revision"),
    sa.CheckConstraint("deleted IN (0, 1)", name="scenarios_deleted"),
)
sa.Index("scenarios_live", scenarios.c.tenant, scenarios.c.deleted, scenarios.c.name, scenarios.c.revision)

jobs = sa.Table(
    "jobs", _meta,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Text, nullable=False, unique=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False, server_default=""),
    sa.Column("request_hash", sa.Text, nullable=False, server_default=""),
    sa.Column("scenario_name", sa.Text, nullable=False, server_default=""),
    sa.Column("scenario_revision", sa.Integer, nullable=False, server_default="0"),
    sa.Column("scenario_sha256", sa.Text, nullable=False, server_default=""),
    sa.Column("scenario_json", sa.Text, nullable=False, server_default=""),
    sa.Column("options_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", _Real, nullable=False),
    sa.Column("started_at", _Real),
    sa.Column("finished_at", _Real),
    sa.Column("result_json", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("progress_json", sa.Text),
    sa.Column("who", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.Text, nullable=False, server_default="solve"),
    sa.Column("tenant", sa.Text, nullable=False, server_default=DEFAULT_TENANT),
    sa.Column("owner", sa.Text, nullable=False, server_default=""),
    sa.Column("lease_until", _Real),
    sa.Column("cancel_requested", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("state IN ('QUEUED','RUNNING','SUCCEEDED','FAILED','CANCELLED')", name="jobs_state"),
    sa.CheckConstraint("kind IN ('solve', 'sweep')", name="jobs_kind"),
    sqlite_autoincrement=True,
)
# idempotency: at most one job per tenant and non-empty request_id, enforced by the database
sa.Index("jobs_request_id", jobs.c.tenant, jobs.c.request_id, unique=True,
         sqlite_where=jobs.c.request_id != "", postgresql_where=jobs.c.request_id != "")
sa.Index("jobs_state_seq", jobs.c.state, jobs.c.seq)
sa.Index("jobs_tenant_seq", jobs.c.tenant, jobs.c.seq)

job_events = sa.Table(
    "job_events", _meta,
    sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.job_id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", _Real, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.PrimaryKeyConstraint("job_id", "seq"),
    sa.CheckConstraint("seq >= 1", name="job_events_seq"),
)

audit = sa.Table(
    "audit", _meta,
    sa.Column("id", _Seq, primary_key=True, autoincrement=True),
    sa.Column("at", _Real, nullable=False),
    sa.Column("who", sa.Text, nullable=False, server_default=""),
    sa.Column("job_id", sa.Text, nullable=False, server_default=""),
    sa.Column("scenario_sha256", sa.Text, nullable=False, server_default=""),
    sa.Column("solver_version", sa.Text, nullable=False, server_default=""),
    sa.Column("options_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("status", sa.Text, nullable=False, server_default=""),
    sa.Column("objective_value", _Real),
    sa.Column("tenant", sa.Text, nullable=False, server_default=DEFAULT_TENANT),
    sa.Column("action", sa.Text, nullable=False, server_default="solve"),
    sa.Column("target", sa.Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
sa.Index("audit_job", audit.c.job_id)
sa.Index("audit_tenant_id", audit.c.tenant, audit.c.id)

sweeps = sa.Table(
    "sweeps", _meta,
    sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.job_id"), primary_key=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("summary_json", sa.Text),
    sa.CheckConstraint("total >= 1", name="sweeps_total"),
)

sweep_items = sa.Table(
    "sweep_items", _meta,
    sa.Column("job_id", sa.Text, sa.ForeignKey("sweeps.job_id"), nullable=False),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("item_json", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("job_id", "phase", "idx"),
    sa.CheckConstraint("phase IN ('variant', 'robust')", name="sweep_items_phase"),
    sa.CheckConstraint("idx >= 0", name="sweep_items_idx"),
)

api_tokens = sa.Table(
    "api_tokens", _meta,
    sa.Column("token_id", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("secret_sha256", sa.Text, nullable=False),  # the secret itself is never stored
    sa.Column("created_at", _Real, nullable=False),
    sa.Column("revoked_at", _Real),
)

schema_version = sa.Table(
    "schema_version", _meta,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _Real, nullable=False),
)

# The audit log is append-only, enforced by the database itself.
_AUDIT_GUARDS = {
    "sqlite": [
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE is not allowed'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE is not allowed'); END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'audit log is append-only: %% is not allowed', TG_OP; END $$""",
        """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
           FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    ],
}

# Upgrades of SQLite files written by earlier versions (PostgreSQL support starts at version 3).
# Each is applied in its own transaction together with its schema_version row; never edit a
# released one, append.
_UPGRADES: dict[int, list[str]] = {
    1: [  # the first schema (what version 2 and 3 changed is below)
        """CREATE TABLE scenarios (
            name TEXT NOT NULL, revision INTEGER NOT NULL CHECK (revision >= 1), scenario_json TEXT NOT NULL,
            sha256 TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)), deleted_at REAL,
            PRIMARY KEY (name, revision))""",
        """CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL CHECK (state IN ('QUEUED','RUNNING','SUCCEEDED','FAILED','CANCELLED')),
            request_id TEXT NOT NULL DEFAULT '', request_hash TEXT NOT NULL DEFAULT '',
            scenario_name TEXT NOT NULL DEFAULT '', scenario_revision INTEGER NOT NULL DEFAULT 0,
            scenario_sha256 TEXT NOT NULL DEFAULT '', scenario_json TEXT NOT NULL DEFAULT '',
            options_json TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, started_at REAL,
            finished_at REAL, result_json TEXT, error TEXT, progress_json TEXT, who TEXT NOT NULL DEFAULT '')""",
        "CREATE UNIQUE INDEX jobs_request_id ON jobs (request_id) WHERE request_id <> ''",
        "CREATE INDEX jobs_state_seq ON jobs (state, seq)",
        """CREATE TABLE job_events (
            job_id TEXT NOT NULL REFERENCES jobs (job_id), seq INTEGER NOT NULL CHECK (seq >= 1),
            at REAL NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (job_id, seq))""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL DEFAULT '',
            job_id TEXT NOT NULL DEFAULT '', scenario_sha256 TEXT NOT NULL DEFAULT '',
            solver_version TEXT NOT NULL DEFAULT '', options_json TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT '', objective_value REAL)""",
        "CREATE INDEX audit_job ON audit (job_id)",
        *_AUDIT_GUARDS["sqlite"],
    ],
    2: [  # sweeps (issue 9)
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'solve' CHECK (kind IN ('solve', 'sweep'))",
        """CREATE TABLE sweeps (
            job_id TEXT PRIMARY KEY REFERENCES jobs (job_id), spec_json TEXT NOT NULL,
            total INTEGER NOT NULL CHECK (total >= 1), summary_json TEXT)""",
        """CREATE TABLE sweep_items (
            job_id TEXT NOT NULL REFERENCES sweeps (job_id),
            phase TEXT NOT NULL CHECK (phase IN ('variant', 'robust')), idx INTEGER NOT NULL CHECK (idx >= 0),
            item_json TEXT NOT NULL, PRIMARY KEY (job_id, phase, idx))""",
    ],
    3: [  # tenants, job owners and leases, API tokens, audit of every state-changing call (issue 11)
        """CREATE TABLE scenarios_v3 (
            tenant TEXT NOT NULL DEFAULT 'local', name TEXT NOT NULL,
            revision INTEGER NOT NULL CHECK (revision >= 1), scenario_json TEXT NOT NULL,
            sha256 TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)), deleted_at REAL,
            PRIMARY KEY (tenant, name, revision))""",
        """INSERT INTO scenarios_v3 (tenant, name, revision, scenario_json, sha256, description, created_at,
                                     deleted, deleted_at)
           SELECT 'local', name, revision, scenario_json, sha256, description, created_at, deleted, deleted_at
           FROM scenarios""",
        "DROP TABLE scenarios",
        "ALTER TABLE scenarios_v3 RENAME TO scenarios",
        "CREATE INDEX scenarios_live ON scenarios (tenant, deleted, name, revision)",
        "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local'",
        "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE jobs ADD COLUMN lease_until REAL",
        "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX jobs_request_id",
        "CREATE UNIQUE INDEX jobs_request_id ON jobs (tenant, request_id) WHERE request_id <> ''",
        "CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq)",
        "ALTER TABLE audit ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local'",
        "ALTER TABLE audit ADD COLUMN action TEXT NOT NULL DEFAULT 'solve'",
        "ALTER TABLE audit ADD COLUMN target TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX audit_tenant_id ON audit (tenant, id)",
        """CREATE TABLE api_tokens (
            token_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL, created_at REAL NOT NULL, revoked_at REAL)""",
    ],
}
assert max(_UPGRADES) == SCHEMA_VERSION


# ------------------------------------------------------------------------------------ page tokens
def _encode_token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode("ascii")


def _decode_token(kind: str, token: str) -> str:
    if len(token) > 512:
        raise ValueError("invalid page_token (too long)")
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError("invalid page_token") from None
    prefix, sep, value = raw.partition(":")
    if not sep or prefix != kind:
        raise ValueError("invalid page_token")
    return value


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(n)))


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r} (expected one of {', '.join(JOB_STATES)})")


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host`` before putting a url in a message."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/:@]*):[^/@]*@", r"\1:***@", url)


def _one_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ----------------------------------------------------------------------------------------- store
class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# The statements of a solve's path (create, claim, end: 3 transactions per solve), built once.
# Building a Core statement per call (coercions, .values(), its cache key) cost more CPU than
# running it: a job's three transactions took 3.25 ms of CPU on the SQLite file (2.50 in
# memory, 4.25 on PostgreSQL) when built per call, 1.42 (0.75, 2.28) with these
# (bench/bench_store.py -> bench/results/store.md). Bound values are named b_* (a name that is
# also a column's would make SQLAlchemy SET that column).
_B = sa.bindparam
_APPEND_EVENT = job_events.insert().from_select(
    ["job_id", "seq", "at", "state", "detail"],
    sa.select(_B("b_job_id", type_=sa.Text), sa.func.coalesce(sa.func.max(job_events.c.seq), 0) + 1,
              _B("b_at", type_=_Real), _B("b_state", type_=sa.Text), _B("b_detail", type_=sa.Text))
    .where(job_events.c.job_id == _B("b_job_id")))
_JOB_BY_ID = sa.select(jobs).where(jobs.c.job_id == _B("b_job_id"))
_JOB_BY_ID_LOCKED = _JOB_BY_ID.with_for_update()
_JOB_EXISTS = sa.select(sa.literal(1)).where(jobs.c.job_id == _B("b_job_id"))
_JOB_BY_REQUEST = sa.select(jobs).where(jobs.c.tenant == _B("b_tenant"), jobs.c.request_id == _B("b_request_id"))
_INSERT_JOB = jobs.insert()
_UPDATE_JOB = jobs.update().where(jobs.c.job_id == _B("b_job_id"))  # SETs the columns named in the parameters
_CLAIM_JOB = (jobs.update().where(jobs.c.job_id == _B("b_job_id"), jobs.c.state == "QUEUED",
                                  jobs.c.owner == _B("b_owner"), jobs.c.cancel_requested == 0)
              .values(state="RUNNING", started_at=_B("b_now"), lease_until=_B("b_lease_until")))
_INSERT_AUDIT = audit.insert().returning(audit.c.id)

_RETRIES = 8  # PostgreSQL: a transaction that lost a race on a unique key is run again


class SqlStore:
    """The store on one database through SQLAlchemy Core; thread-safe.

    SQLite: one connection guarded by a re-entrant lock (SQLite admits one writer at a time
    anyway; serialising in-process is simpler than SQLITE_BUSY retries, and ``:memory:`` databases
    are private to one connection). Every transaction starts with ``BEGIN IMMEDIATE``, so
    check-then-insert sequences are race-free even against another process on the same file.

    PostgreSQL: a connection pool; READ COMMITTED transactions with row locks where a row is read
    and then changed (``SELECT … FOR UPDATE``), unique keys as the backstop of idempotency and
    revision numbering, and a transaction that lost such a race is run again.
    """

    def __init__(self, url: str, *, label: str | None = None, busy_timeout_ms: int = 5000,
                 clock: Callable[[], float] = time.time, check: bool = True, **engine_kw: Any):
        self.url = url
        self.label = label or _redact(url)
        self._clock = clock
        self._closed = False
        self._lock_file: int | None = None
        self.path: str | None = None
        try:
            self._engine = self._make_engine(url, busy_timeout_ms, engine_kw)
        except exc.ArgumentError as err:
            raise ValueError(f"unsupported store url {self.label!r}: {_one_line(err)}") from None
        except ModuleNotFoundError as err:
            raise ValueError(f"unsupported store url {self.label!r}: driver missing ({err.name})") from None
        self.dialect = self._engine.dialect.name
        self._lock: Any = threading.RLock() if self.dialect == "sqlite" else _NoLock()
        try:
            with self._lock, self._engine.connect() as c:  # reachable at all?
                c.exec_driver_sql("SELECT 1")
            if check:
                self._check_integrity()
            self._migrate()
        except StoreUnavailable:
            self._engine.dispose()
            raise
        except exc.SQLAlchemyError as err:
            self._engine.dispose()
            raise StoreUnavailable(f"database {self.label}: {_one_line(err)}") from None

    # ---------------------------------------------------------------------------- infrastructure
    def _make_engine(self, url: str, busy_timeout_ms: int, engine_kw: dict[str, Any]) -> Engine:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            self.path = parsed.database or ":memory:"
            engine = sa.create_engine(
                url, poolclass=StaticPool,
                connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000.0}, **engine_kw)
            memory = self.path == ":memory:"

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if not memory and str(mode).lower() != "wal":
                    raise StoreUnavailable(f"database {self.label}: could not enable WAL journal mode (got {mode!r})")
                cur.execute("PRAGMA synchronous = FULL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        if parsed.get_backend_name() == "postgresql":
            if parsed.drivername == "postgresql":  # the driver this project installs
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine_kw.setdefault("pool_size", 8)
            engine_kw.setdefault("max_overflow", 16)
            return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10}, **engine_kw)
        raise ValueError(f"unsupported store url {self.label!r}: unknown scheme {parsed.drivername!r} "
                         "(supported: sqlite:///path/to/file.db, a bare file path, postgresql://user@host/db)")

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction (SQLite: holding the write lock from the start)."""
        with self._lock, self._engine.begin() as c:
            yield c

    def _run(self, fn: Callable[[Connection], Any]) -> Any:
        """``fn`` in one transaction; on PostgreSQL run again when it lost a race on a unique key
        or a serialisation check (the next run sees the winner's row and decides again)."""
        for attempt in range(_RETRIES):
            try:
                with self._tx() as c:
                    return fn(c)
            except (exc.IntegrityError, exc.OperationalError) as err:
                if self.dialect == "sqlite" or attempt == _RETRIES - 1:
                    raise
                log.debug("store: retrying a transaction after %s", _one_line(err))
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _check_integrity(self) -> None:
        """A damaged file stops here, with one line naming it (not at the first request)."""
        if self.dialect != "sqlite" or self.path == ":memory:":
            return
        with self._lock, self._engine.connect() as c:
            rows = [r[0] for r in c.exec_driver_sql("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            raise StoreUnavailable(f"database {self.label} is damaged (integrity check: {'; '.join(rows[:3])})")

    def _version(self, c: Connection) -> int:
        if not sa.inspect(c).has_table("schema_version"):
            return 0
        return int(c.execute(sa.select(sa.func.coalesce(sa.func.max(schema_version.c.version), 0))).scalar_one())

    def _migrate(self) -> None:
        def step(c: Connection) -> bool:
            current = self._version(c)
            if current > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"database {self.label} has schema version {current}, newer than this code supports "
                    f"({SCHEMA_VERSION}); upgrade the server")
            if current == SCHEMA_VERSION:
                return False
            if current == 0 and not sa.inspect(c).get_table_names():
                _meta.create_all(c)  # a new database: the current schema at once
                for sql in _AUDIT_GUARDS[self.dialect]:
                    c.exec_driver_sql(sql)
                c.execute(schema_version.insert().values(version=SCHEMA_VERSION, applied_at=self._clock()))
                return False
            if self.dialect != "sqlite":
                raise StoreUnavailable(f"database {self.label} has schema version {current} and tables this "
                                       "code does not know; use an empty database")
            if current == 0:
                c.exec_driver_sql("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            for sql in _UPGRADES[current + 1]:
                c.exec_driver_sql(sql)
            c.execute(schema_version.insert().values(version=current + 1, applied_at=self._clock()))
            log.info("database %s upgraded to schema version %d", self.label, current + 1)
            return True

        if self.dialect == "postgresql":  # replicas starting together: one migrates, the others wait
            with self._engine.begin() as c:
                c.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
                while step(c):
                    pass
            return
        while True:
            with self._tx() as c:
                if not step(c):
                    return

    @property
    def schema_version(self) -> int:
        with self._lock, self._engine.connect() as c:
            return self._version(c)

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the database does not answer (health checks)."""
        try:
            with self._lock, self._engine.connect() as c:
                c.exec_driver_sql("SELECT COUNT(*) FROM schema_version").scalar_one()
        except exc.SQLAlchemyError as err:
            raise StoreUnavailable(f"database {self.label}: {_one_line(err)}") from None

    @property
    def shared(self) -> bool:
        """Several servers may use this database at once (PostgreSQL); SQLite admits one."""
        return self.dialect != "sqlite"

    def lock_for_server(self) -> None:
        """Take the database for one server. SQLite: an exclusive lock on ``<file>.lock`` held
        while the store is open; a second server on the same file gets :class:`StoreUnavailable`.
        PostgreSQL: nothing to do (servers share it through job leases)."""
        if self.dialect != "sqlite" or self.path in (None, ":memory:") or self._lock_file is not None:
            return
        lock_path = f"{self.path}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreUnavailable(
                f"database {self.label} is already used by another server ({holder}); SQLite admits one "
                "server per file - use PostgreSQL (database: postgresql://...) for several servers") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._lock_file = fd

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._engine.dispose()
            if self._lock_file is not None:
                os.close(self._lock_file)  # releases the server lock
                self._lock_file = None

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------- scenarios
    @staticmethod
    def _scenario(row: Any) -> StoredScenario:
        return StoredScenario(
            name=row.name, revision=int(row.revision), scenario_json=row.scenario_json, sha256=row.sha256,
            description=row.description, created_at=float(row.created_at), deleted=bool(row.deleted),
            tenant=row.tenant)

    def _insert_revision(self, c: Connection, tenant: str, name: str, scenario_json: str, sha256: str,
                         description: str) -> StoredScenario:
        last = c.execute(sa.select(sa.func.coalesce(sa.func.max(scenarios.c.revision), 0))
                         .where(scenarios.c.tenant == tenant, scenarios.c.name == name)).scalar_one()
        rec = StoredScenario(name=name, revision=int(last) + 1, scenario_json=scenario_json, sha256=sha256,
                             description=description or "", created_at=float(self._clock()), deleted=False,
                             tenant=tenant)
        c.execute(scenarios.insert().values(
            tenant=tenant, name=name, revision=rec.revision, scenario_json=scenario_json, sha256=sha256,
            description=rec.description, created_at=rec.created_at, deleted=0))
        return rec

    @staticmethod
    def _has_live(c: Connection, tenant: str, name: str) -> bool:
        return c.execute(sa.select(sa.literal(1)).where(
            scenarios.c.tenant == tenant, scenarios.c.name == name, scenarios.c.deleted == 0).limit(1)).first() is not None

    @staticmethod
    def _archive_deleted(c: Connection, tenant: str, name: str) -> None:
        """A name created again starts at revision 1 (as the contract says); the revisions of
        its deleted earlier life are kept under ``<name>#archived-<k>``, a name no client can
        take (``#`` is not a store-name character)."""
        mine = (scenarios.c.tenant == tenant)
        if c.execute(sa.select(sa.literal(1)).where(mine, scenarios.c.name == name).limit(1)).first() is None:
            return
        pattern = name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "#archived-%"
        archived = c.execute(sa.select(sa.func.count(sa.distinct(scenarios.c.name)))
                             .where(mine, scenarios.c.name.like(pattern, escape="\\"))).scalar_one()
        c.execute(scenarios.update().where(mine, scenarios.c.name == name, scenarios.c.deleted == 1)
                  .values(name=f"{name}#archived-{int(archived) + 1}"))

    def create_scenario(self, name: str, scenario_json: str, sha256: str, description: str = "", *,
                        tenant: str = DEFAULT_TENANT) -> StoredScenario:
        """Revision 1 for a brand-new name (a deleted earlier life of the name is archived);
        AlreadyExists if a live scenario has that name."""
        if not name:
            raise ValueError("scenario name must not be empty")

        def tx(c: Connection) -> StoredScenario:
            if self._has_live(c, tenant, name):
                raise AlreadyExists(f"scenario {name!r} already exists")
            self._archive_deleted(c, tenant, name)
            return self._insert_revision(c, tenant, name, scenario_json, sha256, description)

        result: StoredScenario = self._run(tx)
        return result

    def update_scenario(self, name: str, scenario_json: str, sha256: str, description: str = "", *,
                        tenant: str = DEFAULT_TENANT) -> StoredScenario:
        """Add revision n+1 of a live scenario (older revisions kept). NotFound if absent/deleted."""
        def tx(c: Connection) -> StoredScenario:
            if not self._has_live(c, tenant, name):
                raise NotFound(f"scenario {name!r} not found")
            return self._insert_revision(c, tenant, name, scenario_json, sha256, description)

        result: StoredScenario = self._run(tx)
        return result

    def get_scenario(self, name: str, revision: int | None = None, *, include_deleted: bool = False,
                     tenant: str = DEFAULT_TENANT) -> StoredScenario:
        """The latest live revision, or the given revision. NotFound if absent or deleted
        (unless ``include_deleted``)."""
        q = sa.select(scenarios).where(scenarios.c.tenant == tenant, scenarios.c.name == name)
        if not include_deleted:
            q = q.where(scenarios.c.deleted == 0)
        if revision is None:
            q = q.order_by(scenarios.c.revision.desc()).limit(1)
        elif not 0 < int(revision) < 2**31:
            raise NotFound(f"scenario {name!r} revision {revision} not found")
        else:
            q = q.where(scenarios.c.revision == int(revision))
        with self._tx() as c:
            row = c.execute(q).first()
        if row is None:
            raise NotFound(f"scenario {name!r} not found" if revision is None
                           else f"scenario {name!r} revision {revision} not found")
        return self._scenario(row)

    def list_scenarios(self, page_size: int = 50, page_token: str = "", *, tenant: str = DEFAULT_TENANT,
                       max_bytes: int | None = None) -> tuple[list[StoredScenario], str]:
        """Latest live revision of each scenario, ordered by name; returns (page, next_page_token),
        the token "" on the last page. ``page_size`` is clamped to 1..1000; ``max_bytes`` ends a page
        early (after at least one item) once its scenarios and descriptions would exceed it."""
        size = _clamp(page_size, 1, MAX_PAGE_SIZE)
        after = _decode_token("scenario", page_token) if page_token else None
        if after is not None and (len(after) > 200 or "\x00" in after):
            raise ValueError("invalid page_token")
        live = [scenarios.c.tenant == tenant, scenarios.c.deleted == 0]
        if after is not None:
            live.append(scenarios.c.name > after)
        latest = (sa.select(scenarios.c.name, sa.func.max(scenarios.c.revision).label("revision"))
                  .where(*live).group_by(scenarios.c.name).order_by(scenarios.c.name).limit(size + 1).subquery())
        q = (sa.select(scenarios).join(latest, sa.and_(scenarios.c.name == latest.c.name,
                                                        scenarios.c.revision == latest.c.revision))
             .where(scenarios.c.tenant == tenant).order_by(scenarios.c.name))
        with self._tx() as c:
            rows = c.execute(q).fetchall()
        items: list[StoredScenario] = []
        used = 0
        for row in rows[:size]:
            cost = len(row.scenario_json) + len(row.description) + 256
            if max_bytes is not None and items and used + cost > max_bytes:
                break
            items.append(self._scenario(row))
            used += cost
        more = len(rows) > len(items)
        return items, (_encode_token("scenario", items[-1].name) if more and items else "")

    def list_revisions(self, name: str, *, include_deleted: bool = False,
                       tenant: str = DEFAULT_TENANT) -> list[StoredScenario]:
        """All live revisions of a scenario, oldest first. NotFound if there are none."""
        q = sa.select(scenarios).where(scenarios.c.tenant == tenant, scenarios.c.name == name)
        if not include_deleted:
            q = q.where(scenarios.c.deleted == 0)
        with self._tx() as c:
            rows = c.execute(q.order_by(scenarios.c.revision)).fetchall()
        if not rows:
            raise NotFound(f"scenario {name!r} not found")
        return [self._scenario(r) for r in rows]

    def delete_scenario(self, name: str, *, tenant: str = DEFAULT_TENANT) -> None:
        """Soft-delete: the revisions stay in the database, hidden from get/list. NotFound if
        absent or already deleted."""
        with self._tx() as c:
            n = c.execute(scenarios.update().where(
                scenarios.c.tenant == tenant, scenarios.c.name == name, scenarios.c.deleted == 0)
                .values(deleted=1, deleted_at=self._clock())).rowcount
        if n == 0:
            raise NotFound(f"scenario {name!r} not found")

    # -------------------------------------------------------------------------------------- jobs
    @staticmethod
    def _job(row: Any) -> JobRecord:
        def opt(v: Any) -> float | None:
            return None if v is None else float(v)

        return JobRecord(
            job_id=row.job_id, state=JobState(row.state), request_id=row.request_id, request_hash=row.request_hash,
            scenario_name=row.scenario_name, scenario_revision=int(row.scenario_revision),
            scenario_sha256=row.scenario_sha256, scenario_json=row.scenario_json, options_json=row.options_json,
            created_at=float(row.created_at), started_at=opt(row.started_at), finished_at=opt(row.finished_at),
            result_json=row.result_json, error=row.error, progress_json=row.progress_json, who=row.who,
            kind=row.kind, tenant=row.tenant, owner=row.owner, lease_until=opt(row.lease_until),
            cancel_requested=bool(row.cancel_requested))

    @staticmethod
    def _scope(q: Any, tenant: str | None) -> Any:
        return q if tenant is None else q.where(jobs.c.tenant == tenant)

    def _job_row(self, c: Connection, job_id: str, tenant: str | None = None, *, lock: bool = False) -> JobRecord:
        if tenant is None:
            row = c.execute(_JOB_BY_ID_LOCKED if lock else _JOB_BY_ID, {"b_job_id": job_id}).first()
        else:
            q = self._scope(sa.select(jobs).where(jobs.c.job_id == job_id), tenant)
            row = c.execute(q.with_for_update() if lock else q).first()
        if row is None:
            raise NotFound(f"job {job_id!r} not found")
        return self._job(row)

    @staticmethod
    def _append_event(c: Connection, job_id: str, state: str, at: float, detail: str) -> None:
        """The job's next history event, numbered in the same statement (one round trip)."""
        c.execute(_APPEND_EVENT, {"b_job_id": job_id, "b_at": float(at), "b_state": state, "b_detail": detail or ""})

    def create_job(self, job: JobRecord, sweep: SweepRecord | None = None,
                   lease_seconds: float | None = None, audit_record: AuditRecord | None = None) -> tuple[JobRecord, bool]:
        """Insert a QUEUED job, idempotently on a non-empty ``request_id`` within the job's tenant:
        an existing job with that request_id and the same ``request_hash`` is returned as
        (existing, False); a different hash raises IdempotencyConflict. Otherwise (stored job,
        True). AlreadyExists if the job_id is taken. A sweep's request is stored in the same
        transaction; ``lease_seconds`` starts the owner's lease; ``audit_record``, completed with the new
        job's id (as its target), scenario hash and options, is appended in the same transaction
        when the job is created."""
        if not job.job_id:
            raise ValueError("job_id must not be empty")

        def tx(c: Connection) -> tuple[JobRecord, bool]:
            if job.request_id:
                row = c.execute(_JOB_BY_REQUEST, {"b_tenant": job.tenant, "b_request_id": job.request_id}).first()
                if row is not None:
                    existing = self._job(row)
                    if existing.request_hash == job.request_hash:
                        return existing, False
                    raise IdempotencyConflict(
                        f"request_id {job.request_id[:128]!r} was already used with a different request body "
                        f"(job {existing.job_id})")
            if c.execute(_JOB_EXISTS, {"b_job_id": job.job_id}).first():
                raise AlreadyExists(f"job {job.job_id!r} already exists")
            now = float(self._clock())
            rec = dataclasses.replace(job, state=JobState.QUEUED, created_at=job.created_at or now,
                                      lease_until=None if lease_seconds is None else now + lease_seconds)
            values = {f.name: getattr(rec, f.name) for f in dataclasses.fields(JobRecord)}
            values["state"] = rec.state.value
            values["cancel_requested"] = int(rec.cancel_requested)
            c.execute(_INSERT_JOB, values)
            if sweep is not None:  # a sweep job never exists without its request
                c.execute(sweeps.insert().values(job_id=rec.job_id, spec_json=sweep.spec_json, total=int(sweep.total)))
            self._append_event(c, rec.job_id, "QUEUED", rec.created_at, "created")
            if audit_record is not None:
                self._insert_audit(c, dataclasses.replace(
                    audit_record, target=rec.job_id, scenario_sha256=rec.scenario_sha256, options_json=rec.options_json))
            return rec, True  # every field of the row just written

        result: tuple[JobRecord, bool] = self._run(tx)
        return result

    def get_job(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """NotFound if absent (or another tenant's)."""
        with self._tx() as c:
            return self._job_row(c, job_id, tenant)

    def find_job_by_request_id(self, request_id: str, *, tenant: str = DEFAULT_TENANT) -> JobRecord | None:
        """The tenant's job created with that request_id, or None."""
        if not request_id:
            return None
        with self._tx() as c:
            row = c.execute(sa.select(jobs).where(jobs.c.tenant == tenant, jobs.c.request_id == request_id)).first()
        return None if row is None else self._job(row)

    def list_jobs(self, state: str | None = None, page_size: int = 50, page_token: str = "", *,
                  tenant: str | None = None, max_bytes: int | None = None) -> tuple[list[JobRecord], str]:
        """Jobs newest first, optionally only those in ``state``; (page, next_page_token).
        ``max_bytes`` ends a page early (after at least one job) once results would exceed it."""
        if state is not None:
            _check_state(state)
        size = _clamp(page_size, 1, MAX_PAGE_SIZE)
        q = self._scope(sa.select(jobs), tenant)
        if state is not None:
            q = q.where(jobs.c.state == state)
        if page_token:
            raw = _decode_token("job", page_token)
            if not raw.isdigit() or len(raw) > 18:
                raise ValueError("invalid page_token")
            q = q.where(jobs.c.seq < int(raw))
        with self._tx() as c:
            rows = c.execute(q.order_by(jobs.c.seq.desc()).limit(size + 1)).fetchall()
        items: list[JobRecord] = []
        used = 0
        last_seq = 0
        for row in rows[:size]:
            cost = len(row.result_json or "") + len(row.progress_json or "") + len(row.error or "") + 512
            if max_bytes is not None and items and used + cost > max_bytes:
                break
            items.append(self._job(row))
            used += cost
            last_seq = int(row.seq)
        more = len(rows) > len(items)
        return items, (_encode_token("job", str(last_seq)) if more and items else "")

    def set_job_state(self, job_id: str, state: str, *, error: str | None = None, result_json: str | None = None,
                      started_at: float | None = None, finished_at: float | None = None, detail: str = "",
                      owner: str | None = None, audit_of: Callable[[JobRecord], AuditRecord] | None = None) -> JobRecord:
        """Move a job to ``state`` and append a history event. ``None`` arguments leave the stored
        value unchanged. ValueError for an unknown state, when the job is already terminal, or
        (with ``owner``) when the job is no longer that server's. NotFound if absent. ``audit_of``
        makes the audit record of the moved job, appended in the same transaction."""
        _check_state(state)

        def tx(c: Connection) -> JobRecord:
            current = self._job_row(c, job_id, lock=True)
            if current.state in TERMINAL_STATES:
                raise ValueError(f"job {job_id!r} is already {current.state} (a terminal state) and cannot "
                                 f"move to {state}")
            if owner is not None and current.owner != owner:
                raise ValueError(f"job {job_id!r} now belongs to server {current.owner!r}")
            now = float(self._clock())
            values: dict[str, Any] = {"state": state}
            if started_at is None and state == "RUNNING" and current.started_at is None:
                values["started_at"] = now
            elif started_at is not None:
                values["started_at"] = started_at
            if finished_at is None and state in TERMINAL_STATES and current.finished_at is None:
                values["finished_at"] = now
            elif finished_at is not None:
                values["finished_at"] = finished_at
            if error is not None:
                values["error"] = error
            if result_json is not None:
                values["result_json"] = result_json
            if state in TERMINAL_STATES:
                values["lease_until"] = None
            c.execute(_UPDATE_JOB, {"b_job_id": job_id, **values})
            self._append_event(c, job_id, state, now, detail)
            moved = dataclasses.replace(current, **{**values, "state": JobState(state)})  # what the row now holds
            if audit_of is not None:
                self._insert_audit(c, audit_of(moved))
            return moved

        result: JobRecord = self._run(tx)
        return result

    def claim_job(self, job_id: str, owner: str, lease_seconds: float, detail: str = "") -> JobRecord | None:
        """Atomically move the owner's QUEUED job to RUNNING (None when it is no longer queued or
        no longer this owner's: cancelled, or taken over). The claim is what keeps a job from
        running twice."""
        def tx(c: Connection) -> JobRecord | None:
            now = float(self._clock())
            n = c.execute(_CLAIM_JOB, {"b_job_id": job_id, "b_owner": owner, "b_now": now,
                                       "b_lease_until": now + lease_seconds}).rowcount
            if n != 1:
                return None
            self._append_event(c, job_id, "RUNNING", now, detail)
            return self._job_row(c, job_id)

        result: JobRecord | None = self._run(tx)
        return result

    def renew_leases(self, owner: str, lease_seconds: float) -> list[str]:
        """The owner's heartbeat: extend the lease of its live jobs; returns the ids of those a
        server was asked to cancel (by any server)."""
        now = float(self._clock())
        with self._tx() as c:
            c.execute(jobs.update().where(jobs.c.owner == owner, jobs.c.state.in_(_LIVE_STATES))
                      .values(lease_until=now + lease_seconds))
            rows = c.execute(sa.select(jobs.c.job_id).where(
                jobs.c.owner == owner, jobs.c.state.in_(_LIVE_STATES), jobs.c.cancel_requested == 1)).fetchall()
        return [r[0] for r in rows]

    def request_cancel(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """Ask the job's owner (whichever server) to cancel it; NotFound if absent."""
        def tx(c: Connection) -> JobRecord:
            self._job_row(c, job_id, tenant, lock=True)
            c.execute(jobs.update().where(jobs.c.job_id == job_id).values(cancel_requested=1))
            return self._job_row(c, job_id)

        result: JobRecord = self._run(tx)
        return result

    def take_over_expired(self, owner: str, lease_seconds: float, reason: str) -> tuple[list[str], list[JobRecord]]:
        """Jobs whose owner's lease expired (the owner died): a RUNNING job or a sweep is failed
        with ``reason`` (its solve may have been half done); a QUEUED solve is taken over by
        ``owner`` to run (it never started). Returns (failed ids, taken-over jobs). Each row is
        locked (and skipped when another server holds it), so two servers never take the same job."""
        def tx(c: Connection) -> tuple[list[str], list[JobRecord]]:
            now = float(self._clock())
            q = (sa.select(jobs.c.job_id, jobs.c.state, jobs.c.kind, jobs.c.cancel_requested)
                 .where(jobs.c.state.in_(_LIVE_STATES), jobs.c.owner != owner, jobs.c.lease_until < now)
                 .order_by(jobs.c.seq).limit(200))
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            failed: list[str] = []
            taken: list[JobRecord] = []
            for job_id, state, kind, cancel in c.execute(q).fetchall():
                if state == "QUEUED" and kind == "solve" and not cancel:
                    c.execute(jobs.update().where(jobs.c.job_id == job_id)
                              .values(owner=owner, lease_until=now + lease_seconds))
                    self._append_event(c, job_id, "QUEUED", now, f"taken over by server {owner}: {reason}")
                    taken.append(self._job_row(c, job_id))
                else:
                    final = "CANCELLED" if cancel else "FAILED"
                    c.execute(jobs.update().where(jobs.c.job_id == job_id).values(
                        state=final, error=reason, lease_until=None,
                        finished_at=sa.func.coalesce(jobs.c.finished_at, now)))
                    self._append_event(c, job_id, final, now, reason)
                    failed.append(job_id)
            return failed, taken

        result: tuple[list[str], list[JobRecord]] = self._run(tx)
        return result

    def take_waiting(self, owner: str, lease_seconds: float, waited: float, limit: int = 1) -> list[JobRecord]:
        """Work sharing between live servers: ``owner`` (a server with a free worker) takes up to
        ``limit`` queued solves that another server accepted ``waited`` seconds ago or earlier and
        has not started. The accepting server's claim then fails and it follows the job through
        the store instead (its callers still get their answer)."""
        def tx(c: Connection) -> list[JobRecord]:
            now = float(self._clock())
            q = (sa.select(jobs.c.job_id).where(
                jobs.c.state == "QUEUED", jobs.c.kind == "solve", jobs.c.owner != owner,
                jobs.c.cancel_requested == 0, jobs.c.created_at <= now - waited)
                 .order_by(jobs.c.seq).limit(limit))
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            taken = []
            for (job_id,) in c.execute(q).fetchall():
                c.execute(jobs.update().where(jobs.c.job_id == job_id)
                          .values(owner=owner, lease_until=now + lease_seconds))
                self._append_event(c, job_id, "QUEUED", now, f"moved to server {owner}, which had a free worker")
                taken.append(self._job_row(c, job_id))
            return taken

        result: list[JobRecord] = self._run(tx)
        return result

    def owners(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The current owner of each job."""
        if not job_ids:
            return {}
        with self._tx() as c:
            rows = c.execute(sa.select(jobs.c.job_id, jobs.c.owner).where(jobs.c.job_id.in_(list(job_ids)))).fetchall()
        return {r[0]: r[1] for r in rows}

    def set_job_progress(self, job_id: str, progress_json: str) -> None:
        """Overwrite the job's latest progress snapshot (no history event). NotFound if absent.
        Each commit is fsync'ed on SQLite: callers throttle (JobManager: once a second)."""
        with self._tx() as c:
            n = c.execute(jobs.update().where(jobs.c.job_id == job_id).values(progress_json=progress_json)).rowcount
        if n == 0:
            raise NotFound(f"job {job_id!r} not found")

    def job_history(self, job_id: str, *, tenant: str | None = None) -> list[JobEvent]:
        """The job's state events in order (seq ascending). NotFound if the job is absent."""
        with self._tx() as c:
            self._job_row(c, job_id, tenant)
            rows = c.execute(sa.select(job_events).where(job_events.c.job_id == job_id)
                             .order_by(job_events.c.seq)).fetchall()
        return [JobEvent(job_id=r.job_id, seq=int(r.seq), at=float(r.at), state=JobState(r.state), detail=r.detail)
                for r in rows]

    def job_histories(self, job_ids: Sequence[str]) -> dict[str, list[JobEvent]]:
        """The state events of many jobs in one query (ListJobs), each job's in order."""
        out: dict[str, list[JobEvent]] = {j: [] for j in job_ids}
        if not job_ids:
            return out
        with self._tx() as c:
            rows = c.execute(sa.select(job_events).where(job_events.c.job_id.in_(list(job_ids)))
                             .order_by(job_events.c.job_id, job_events.c.seq)).fetchall()
        for r in rows:
            out[r.job_id].append(JobEvent(job_id=r.job_id, seq=int(r.seq), at=float(r.at), state=JobState(r.state),
                                          detail=r.detail))
        return out

    def fail_interrupted_jobs(self, reason: str) -> list[str]:
        """A single-server (SQLite) start: every QUEUED/RUNNING job was left by a stopped server
        (the file lock says no other server is running): FAILED with ``error=reason``; their
        ids, oldest first."""
        def tx(c: Connection) -> list[str]:
            ids = [r[0] for r in c.execute(sa.select(jobs.c.job_id).where(jobs.c.state.in_(_LIVE_STATES))
                                           .order_by(jobs.c.seq)).fetchall()]
            now = float(self._clock())
            for job_id in ids:
                c.execute(jobs.update().where(jobs.c.job_id == job_id).values(
                    state="FAILED", error=reason, lease_until=None,
                    finished_at=sa.func.coalesce(jobs.c.finished_at, now)))
                self._append_event(c, job_id, "FAILED", now, reason)
            return ids

        result: list[str] = self._run(tx)
        return result

    # ------------------------------------------------------------------------------------ sweeps
    def get_sweep(self, job_id: str, *, tenant: str | None = None) -> SweepRecord:
        """A sweep job's request, size, summary and answered count. NotFound if absent."""
        with self._tx() as c:
            q = sa.select(sweeps).join(jobs, jobs.c.job_id == sweeps.c.job_id).where(sweeps.c.job_id == job_id)
            row = c.execute(self._scope(q, tenant)).first()
            if row is None:
                raise NotFound(f"sweep {job_id!r} not found")
            done = c.execute(sa.select(sa.func.count()).select_from(sweep_items).where(
                sweep_items.c.job_id == job_id, sweep_items.c.phase == "variant")).scalar_one()
        return SweepRecord(row.spec_json, int(row.total), row.summary_json, int(done))

    def add_sweep_items(self, job_id: str, phase: str, items: Sequence[tuple[int, str]]) -> None:
        """Store answers ``(variant index, JSON)`` of ``phase`` ('variant' or 'robust') in one transaction."""
        if not items:
            return
        with self._tx() as c:
            idx = [int(i) for i, _ in items]
            c.execute(sweep_items.delete().where(sweep_items.c.job_id == job_id, sweep_items.c.phase == phase,
                                                 sweep_items.c.idx.in_(idx)))
            c.execute(sweep_items.insert(), [{"job_id": job_id, "phase": phase, "idx": int(i), "item_json": text}
                                             for i, text in items])

    def sweep_items(self, job_id: str, phase: str, after: int = -1, limit: int = 1_000_000) -> list[tuple[int, str]]:
        """Stored answers of ``phase`` with index > ``after``, by index, at most ``limit``."""
        with self._tx() as c:
            rows = c.execute(sa.select(sweep_items.c.idx, sweep_items.c.item_json).where(
                sweep_items.c.job_id == job_id, sweep_items.c.phase == phase, sweep_items.c.idx > int(after))
                .order_by(sweep_items.c.idx).limit(int(limit))).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def set_sweep_summary(self, job_id: str, summary_json: str) -> None:
        """Store the sweep's summary. NotFound if absent."""
        with self._tx() as c:
            n = c.execute(sweeps.update().where(sweeps.c.job_id == job_id).values(summary_json=summary_json)).rowcount
        if n == 0:
            raise NotFound(f"sweep {job_id!r} not found")

    # ------------------------------------------------------------------------------------- audit
    @staticmethod
    def _entry(row: Any) -> AuditRecord:
        return AuditRecord(
            id=int(row.id), at=float(row.at), who=row.who, job_id=row.job_id, scenario_sha256=row.scenario_sha256,
            solver_version=row.solver_version, options_json=row.options_json, status=row.status,
            objective_value=None if row.objective_value is None else float(row.objective_value),
            tenant=row.tenant, action=row.action, target=row.target)

    def append_audit(self, record: AuditRecord) -> int:
        """Append an audit record (its ``id`` must be None); returns the assigned id."""
        if record.id is not None:
            raise ValueError("append_audit assigns the id; pass an AuditRecord with id=None")
        with self._tx() as c:
            return self._insert_audit(c, record)

    def _insert_audit(self, c: Connection, record: AuditRecord) -> int:
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(AuditRecord) if f.name != "id"}
        values["at"] = record.at or float(self._clock())
        if values["objective_value"] is not None:
            values["objective_value"] = float(values["objective_value"])
        return int(c.execute(_INSERT_AUDIT, values).scalar_one())

    def list_audit(self, limit: int = 100, *, tenant: str | None = None) -> list[AuditRecord]:
        """The most recent ``limit`` audit records, newest first (of one tenant, or all)."""
        q = sa.select(audit)
        if tenant is not None:
            q = q.where(audit.c.tenant == tenant)
        with self._tx() as c:
            rows = c.execute(q.order_by(audit.c.id.desc()).limit(_clamp(limit, 1, MAX_AUDIT_LIMIT))).fetchall()
        return [self._entry(r) for r in rows]

    # ------------------------------------------------------------------------------------ tokens
    @staticmethod
    def _token(row: Any) -> TokenRecord:
        return TokenRecord(token_id=row.token_id, tenant=row.tenant, name=row.name, created_at=float(row.created_at),
                           revoked_at=None if row.revoked_at is None else float(row.revoked_at))

    def create_token(self, tenant: str, name: str) -> tuple[TokenRecord, str]:
        """A new API token of ``tenant``: (its record, the secret token string). The secret is
        returned this once; the database keeps only its SHA-256."""
        for field, value in (("tenant", tenant), ("name", name)):
            if not TENANT_PATTERN.fullmatch(value or ""):
                raise ValueError(f"token {field} must be 1..64 characters of [A-Za-z0-9_.-], got {value[:80]!r}")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        rec = TokenRecord(token_id=token_id, tenant=tenant, name=name, created_at=float(self._clock()))
        with self._tx() as c:
            c.execute(api_tokens.insert().values(
                token_id=token_id, tenant=tenant, name=name, created_at=rec.created_at,
                secret_sha256=hashlib.sha256(secret.encode()).hexdigest()))
        return rec, f"lep.{token_id}.{secret}"

    def verify_token(self, token: str) -> TokenRecord | None:
        """The live token record of a presented token string, or None (malformed, unknown,
        revoked or wrong secret: the caller cannot tell which). The secret's hash is compared in
        constant time."""
        m = _TOKEN_PATTERN.fullmatch(token or "")
        if m is None:
            return None
        token_id, secret = m.groups()
        with self._tx() as c:
            row = c.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        presented = hashlib.sha256(secret.encode()).hexdigest()
        stored = row.secret_sha256 if row is not None else "0" * 64
        if not hmac.compare_digest(presented, stored) or row is None or row.revoked_at is not None:
            return None
        return self._token(row)

    def list_tokens(self, tenant: str | None = None) -> list[TokenRecord]:
        """Every token (or one tenant's), oldest first, revoked ones included."""
        q = sa.select(api_tokens)
        if tenant is not None:
            q = q.where(api_tokens.c.tenant == tenant)
        with self._tx() as c:
            rows = c.execute(q.order_by(api_tokens.c.created_at, api_tokens.c.token_id)).fetchall()
        return [self._token(r) for r in rows]

    def revoke_token(self, token_id: str) -> TokenRecord:
        """Revoke a token at once (NotFound if unknown); revoking twice keeps the first time."""
        with self._tx() as c:
            row = c.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
            if row is None:
                raise NotFound(f"token {token_id[:64]!r} not found")
            if row.revoked_at is None:
                c.execute(api_tokens.update().where(api_tokens.c.token_id == token_id)
                          .values(revoked_at=float(self._clock())))
            row = c.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        return self._token(row)


Store = SqlStore  # the name callers use in type hints
SqliteStore = SqlStore  # before PostgreSQL support the SQLite store had its own class


# --------------------------------------------------------------------------------------- factory
def open_store(url: str, **kwargs: Any) -> SqlStore:
    """Open a store from a url.

    * ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (the SQLAlchemy
      convention), or a bare file path (``/var/lib/lepton/store.db``, ``store.db``); the directory
      must exist (a typo in it is an error, not a new empty database elsewhere);
    * ``sqlite:///:memory:``, ``sqlite://`` or ``:memory:`` for a private in-memory database;
    * ``postgresql://user:password@host:port/dbname`` (driver psycopg 3).

    ``ValueError`` for a url that is none of these; :class:`StoreUnavailable` (one line naming the
    database, password redacted) when it cannot be opened, is damaged or is newer than this code.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"unsupported store url {url!r}: empty")
    if url == ":memory:":
        url = "sqlite://"
    elif "://" not in url:
        url = "sqlite:///" + url
    scheme, _, rest = url.partition("://")
    if scheme.lower() == "sqlite":
        if rest and not rest.startswith("/"):
            raise ValueError(f"unsupported store url {_redact(url)!r}: sqlite urls take no host; "
                             "write sqlite:///relative.db or sqlite:////absolute/path.db")
        path = rest[1:]
        if rest == "/":
            raise ValueError(f"unsupported store url {url!r}: no database path")
        if path and path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise StoreUnavailable(f"database {path}: directory {parent} does not exist")
            if os.path.isdir(path):
                raise StoreUnavailable(f"database {path}: is a directory, not a database file")
            return SqlStore(url, label=path, **kwargs)
        return SqlStore("sqlite://", label=":memory:", **kwargs)
    if scheme.lower() not in ("postgresql", "postgresql+psycopg", "postgres"):
        raise ValueError(f"unsupported store url {_redact(url)!r}: unknown scheme {scheme!r} "
                         "(supported: sqlite:///path/to/file.db, a bare file path, postgresql://user@host/db)")
    if scheme.lower() == "postgres":
        url = "postgresql://" + rest
    return SqlStore(url, **kwargs)
