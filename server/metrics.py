"""Prometheus metrics: solve count and durations, queue depth, active workers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.solves = Counter("lepton_solves_total", "Solves finished, by outcome status", ["status"], registry=self.registry)
        self.duration = Histogram("lepton_solve_duration_seconds", "Wall time of a solve in a worker",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600), registry=self.registry)
        self.queue_depth = Gauge("lepton_queue_depth", "Jobs waiting for a worker", registry=self.registry)
        self.active_workers = Gauge("lepton_active_workers", "Workers currently solving", registry=self.registry)
        self.rpcs = Counter("lepton_rpc_total", "RPCs handled, by method and code", ["method", "code"], registry=self.registry)

    def observe_solve(self, status: str, seconds: float) -> None:
        self.solves.labels(status=status).inc()
        self.duration.observe(seconds)

    def serve(self, port: int) -> int:
        """Start the HTTP exporter; returns the bound port."""
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        return int(server.server_address[1])
