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
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc

from .config import ServerConfig
from .jobs import JobManager
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
        self.pool.stop()
        self.store.close()
        log.info("stopped")


def start_server(cfg: ServerConfig) -> RunningServer:
    setup_logging()
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

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc"),
        # beyond this many RPCs at once (each WatchJob holds a thread) answer RESOURCE_EXHAUSTED
        # instead of queueing callers behind long streams
        maximum_concurrent_rpcs=60,
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )
    svc_grpc.add_AllocationServiceServicer_to_server(
        AllocationServicer(manager, store, metrics, test_hooks=cfg.test_hooks), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(cfg.address)
    if port == 0:
        pool.stop()
        store.close()
        raise RuntimeError(f"cannot listen on {cfg.address}")
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    threading.Thread(target=_watch_store, args=(store, manager, health_servicer), name="store-health",
                     daemon=True).start()
    metrics_port = metrics.serve(cfg.metrics_port) if cfg.metrics_port else None
    host = cfg.address.rsplit(":", 1)[0]
    log.info("serving %s on %s:%d (workers %d, queue %d, max time limit %.0fs, database %s, metrics %s)",
             SERVICE_NAME, host, port, cfg.workers, cfg.queue_size, cfg.max_time_limit, cfg.database,
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
