"""Server configuration, resolved in one place: flag > environment > file > default."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .limits import Limits


@dataclass(frozen=True)
class ServerConfig:
    address: str = "127.0.0.1:50051"  # HOST:PORT; port 0 picks a free port
    workers: int = 2  # solver worker processes (one HiGHS thread each)
    queue_size: int = 16  # jobs waiting at most; more is RESOURCE_EXHAUSTED
    max_time_limit: float = 300.0  # cap on any solve's time limit, seconds
    database: str = "lepton-alloc.db"  # SQLite file path, sqlite:///path, or postgresql://user:pw@host/db
    metrics_port: int = 0  # Prometheus HTTP port; 0 = off
    grace: float = 10.0  # graceful shutdown: seconds running solves may finish
    kill_grace: float = 1.0  # seconds a solve may take to honour an interrupt before its worker is killed
    progress_interval: float = 0.1  # minimum seconds between progress events to one watcher
    test_hooks: bool = False  # allow debug options (tests only)
    sweep_executor: str = ""  # where sweep variants run: "" = the worker pool; ray://HOST:PORT, auto or local = Ray
    ray_actors: int = 2  # with a Ray sweep executor: actors, each keeping one model warm
    # several servers on one (PostgreSQL) database: a job whose owner has not renewed its lease for
    # this long is taken over (queued) or failed (running) by another server
    lease_seconds: float = 30.0
    tenant_max_queued: int = 8  # waiting jobs per tenant (0 = the whole queue)
    tenant_max_running: int = 0  # jobs running at once per tenant (0 = every worker)
    # fair use (server/limits.py, whose Limits holds the defaults): request, reply and scenario
    # sizes, the caps on open streams and long calls, the gate of large validations
    max_request_bytes: int = Limits.max_request_bytes
    max_message_bytes: int = Limits.max_message_bytes
    max_description_chars: int = Limits.max_description_chars
    max_name_chars: int = Limits.max_name_chars
    max_id_chars: int = Limits.max_id_chars
    max_page_token_chars: int = Limits.max_page_token_chars
    max_markets: int = Limits.max_markets
    max_options: int = Limits.max_options
    max_years: int = Limits.max_years
    max_growth_scenarios: int = Limits.max_growth_scenarios
    max_entry_columns: int = Limits.max_entry_columns
    max_document_values: int = Limits.max_document_values
    max_error_bytes: int = Limits.max_error_bytes
    max_streams: int = Limits.max_streams
    max_streams_per_caller: int = Limits.max_streams_per_caller
    large_request_bytes: int = Limits.large_request_bytes
    large_validations: int = Limits.large_validations
    large_waiting: int = Limits.large_waiting
    rpc_threads: int = 0  # gRPC server threads; 0 = enough for every capped stream plus the short calls
    # transport security: TLS with a certificate and key (PEM files, both or neither); with a
    # client CA, mutual TLS (every client must present a certificate signed by it)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    allow_insecure_bind: bool = False  # listen on a non-loopback address without TLS (a warning is logged)
    # callers without an API token are accepted from loopback peers only, as tenant "local"; off
    # when a proxy on this machine forwards remote callers
    allow_anonymous_loopback: bool = True


ENV_PREFIX = "LEPTON_"


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(ServerConfig)}[name]
    try:
        if kind in ("int", int):
            return int(value)
        if kind in ("float", float):
            return float(value)
        if kind in ("bool", bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"configuration {name}: cannot read {value!r} as {kind}") from None


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> ServerConfig:
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    known = {f.name for f in fields(ServerConfig)}
    if path:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"configuration file {path}: must be a mapping")
        for k, v in data.items():
            if k not in known:
                raise ValueError(f"configuration file {path}: unknown setting {k!r}")
            values[k] = _coerce(k, v)
    for name in known:
        if ENV_PREFIX + name.upper() in env:
            values[name] = _coerce(name, env[ENV_PREFIX + name.upper()])
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = _coerce(k, v)
    return ServerConfig(**values)
