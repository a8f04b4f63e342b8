"""Server assembly: store, worker pool (started first), job manager, gRPC server, health,
reflection, metrics, graceful shutdown."""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc

from .auth import AuthInterceptor, Identity, ip_is_loopback
from .config import ServerConfig
from .jobs import JobManager
from .limits import Limits, RequestGuard
from .metrics import Metrics
from .servicer import AllocationServicer
from .store import Store, StoreUnavailable, open_store
from .workers import WorkerPool

SERVICE_NAME = svc.DESCRIPTOR.services_by_name["AllocationService"].full_name
log = logging.getLogger("lepton_alloc.server")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ exception summary)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("lepton_alloc")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    manager: JobManager
    pool: WorkerPool
    store: Store
    health: Any
    metrics: Metrics
    metrics_port: int | None
    config: ServerConfig
    _stopped: bool = False

    def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: NOT_SERVING, refuse new work, let running solves finish within
        ``grace`` (then cancel them), stop the gRPC server, the workers and the store."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.grace if grace is None else grace
        log.info("draining (grace %.1fs)", grace)
        self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.manager.drain(grace)
        self.server.stop(grace=1.0).wait()
        close_executor = getattr(self.manager.sweep_executor, "close", None)
        if close_executor is not None:  # a Ray cluster's actors, and this process's connection to it
            close_executor()
        self.pool.stop()
        self.store.close()
        log.info("stopped")


def is_loopback_address(address: str) -> bool:
    """Whether a listening address (HOST:PORT, [IPv6]:PORT or unix:PATH) is reachable from this
    machine only: localhost, 127.0.0.0/8, ::1 or a Unix domain socket."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    host = host.strip("[]")
    return host.lower() == "localhost" or ip_is_loopback(host)


def _pem(path: str, what: str, marker: bytes) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if marker not in data:
        raise ValueError(f"the {what} {path} is not a PEM file (no '{marker.decode()}' line)")
    return data


def server_credentials(cfg: ServerConfig) -> grpc.ServerCredentials | None:
    """The TLS credentials of ``cfg`` (None for plaintext), after the checks that decide whether
    the server may start: certificate and key both or neither, readable PEM files, and no
    plaintext on a non-loopback address unless ``allow_insecure_bind``. ValueError: one line
    naming the address, file or setting that is wrong."""
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ValueError("TLS needs both tls_cert and tls_key (--tls-cert, --tls-key), got only "
                         + ("tls_cert" if cfg.tls_cert else "tls_key"))
    if cfg.tls_client_ca and not cfg.tls_cert:
        raise ValueError("tls_client_ca (--tls-client-ca, mutual TLS) needs tls_cert and tls_key as well")
    if not cfg.tls_cert:
        if not is_loopback_address(cfg.address):
            if not cfg.allow_insecure_bind:
                raise ValueError(
                    f"refusing to listen on {cfg.address} without TLS: it is not a loopback address; give "
                    "--tls-cert and --tls-key, or --allow-insecure-bind (allow_insecure_bind) to accept plaintext")
            log.warning("listening on %s WITHOUT TLS (allow_insecure_bind): API tokens and scenarios cross the "
                        "network in clear text", cfg.address)
        return None
    cert = _pem(cfg.tls_cert, "TLS certificate", b"-----BEGIN")
    key = _pem(cfg.tls_key, "TLS key", b"PRIVATE KEY-----")
    client_ca = _pem(cfg.tls_client_ca, "TLS client CA certificate", b"-----BEGIN") if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def start_server(cfg: ServerConfig) -> RunningServer:
    setup_logging()
    # transport checks first: a refused address or an unreadable certificate costs nothing to start
    credentials = server_credentials(cfg)
    limits = Limits.from_config(cfg)  # ValueError naming the setting, before anything starts
    if cfg.rpc_threads and cfg.rpc_threads <= limits.max_streams:
        raise ValueError(f"configuration rpc_threads ({cfg.rpc_threads}) must exceed max_streams ({limits.max_streams}): "
                         "threads must be left for unary calls and the health service")
    # checked at start: unreachable, damaged, newer-schema or locked databases stop here with one
    # line naming them (StoreUnavailable), never at the first request
    store = open_store(cfg.database)
    try:
        store.lock_for_server()  # SQLite: one server per file
    except StoreUnavailable:
        store.close()
        raise
    if not store.shared:
        # the lock says no other server runs on this file: what was live is left over
        interrupted = store.fail_interrupted_jobs("the server stopped before this job finished; submit it again")
        if interrupted:
            log.warning("marked %d interrupted job(s) as failed: %s", len(interrupted), ", ".join(interrupted))
    # on a shared database other servers' jobs are theirs: the lease heartbeat takes over only
    # the jobs of servers that stopped renewing (JobManager._heartbeat)
    # worker processes start before any gRPC object exists in this process
    pool = WorkerPool(cfg.workers)
    pool.start()
    metrics = Metrics()
    manager = JobManager(store, pool, queue_size=cfg.queue_size, max_time_limit=cfg.max_time_limit,
                         kill_grace=cfg.kill_grace, min_event_interval=cfg.progress_interval, metrics=metrics,
                         lease_seconds=cfg.lease_seconds, tenant_max_queued=cfg.tenant_max_queued,
                         tenant_max_running=cfg.tenant_max_running)
    manager.start()
    if cfg.sweep_executor:
        from .ray_executor import RayExecutor

        try:
            executor = RayExecutor(cfg.sweep_executor, cfg.ray_actors)
        except Exception as exc:
            pool.stop()
            store.close()
            raise RuntimeError(f"cannot use the sweep executor {cfg.sweep_executor!r}: {exc}") from None
        manager.sweep_executor, manager.sweep_executor_name = executor, executor.name
        log.info("sweeps run on %s", executor.name)

    def verify(token: str) -> Identity | None:
        record = store.verify_token(token)
        return Identity(record.tenant, record.name, record.token_id) if record is not None else None

    server = grpc.server(
        # no cap on concurrent RPCs: streams and long calls are capped (RequestGuard) below the
        # pool's size, so unary calls and the health service always find a thread
        futures.ThreadPoolExecutor(max_workers=cfg.rpc_threads or limits.rpc_threads(cfg.queue_size, cfg.workers),
                                   thread_name_prefix="rpc"),
        # every call but health and reflection: an API token, or anonymous from loopback if allowed
        # then malformed or oversized requests (INVALID_ARGUMENT) and the caps on streams
        interceptors=[AuthInterceptor(verify, allow_anonymous_loopback=cfg.allow_anonymous_loopback),
                      RequestGuard(limits, retry_after=manager.retry_after)],
        # requests above max_request_bytes (and up to this) are refused by RequestGuard naming the
        # limit; every reply fits this (the servicer's checks)
        options=[("grpc.max_receive_message_length", limits.max_message_bytes),
                 ("grpc.max_send_message_length", limits.max_message_bytes)],
    )
    svc_grpc.add_AllocationServiceServicer_to_server(
        AllocationServicer(manager, store, metrics, test_hooks=cfg.test_hooks, limits=limits), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    try:
        if credentials is None:
            port = server.add_insecure_port(cfg.address)
        else:
            port = server.add_secure_port(cfg.address, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        pool.stop()
        store.close()
        raise RuntimeError(f"cannot listen on {cfg.address}" + (
            "" if credentials is None else
            f" (the address is taken or unavailable, or the TLS key {cfg.tls_key} does not match the "
            f"certificate {cfg.tls_cert})"))
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    threading.Thread(target=_watch_store, args=(store, manager, health_servicer), name="store-health",
                     daemon=True).start()
    metrics_port = metrics.serve(cfg.metrics_port) if cfg.metrics_port else None
    host = cfg.address.rsplit(":", 1)[0]
    log.info("serving %s on %s:%d (%s, workers %d, queue %d, max time limit %.0fs, database %s, metrics %s)",
             SERVICE_NAME, host, port,
             "plaintext" if credentials is None else "mutual TLS" if cfg.tls_client_ca else "TLS",
             cfg.workers, cfg.queue_size, cfg.max_time_limit, cfg.database,
             f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else "off")
    # what is loaded by now lives as long as the server: the collector need not rescan it
    gc.collect()
    gc.freeze()
    return RunningServer(server, port, manager, pool, store, health_servicer, metrics, metrics_port, cfg)


def _watch_store(store: Store, manager: JobManager, health_servicer: Any, period: float = 2.0) -> None:
    """Health follows the store: NOT_SERVING while the database does not answer (or the lease
    heartbeat fails), SERVING again once it does."""
    serving = True
    while not manager.draining:
        try:
            store.ping()
            problem = manager.heartbeat_error
        except StoreUnavailable as exc:
            problem = str(exc)
        except Exception:  # noqa: BLE001 - closed at shutdown
            return
        if bool(problem) == serving and not manager.draining:
            serving = not problem
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            health_servicer.set("", status)
            health_servicer.set(SERVICE_NAME, status)
            if serving:
                log.info("the database answers again: SERVING")
            else:
                log.error("the database fails (%s): NOT_SERVING", problem)
        time.sleep(period)


def serve_forever(cfg: ServerConfig) -> int:
    try:
        running = start_server(cfg)
    except (StoreUnavailable, RuntimeError, ValueError, OSError) as exc:
        # one line naming what is wrong (the database, the address, a certificate), no traceback
        print(f"lepton-alloc serve: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"listening on {cfg.address.rsplit(':', 1)[0]}:{running.port}", file=sys.stderr, flush=True)
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    running.stop()
    return 0
