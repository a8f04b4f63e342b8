"""UNAVAILABLE is retried for idempotent calls only (the server comes up while the client waits)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError

from ..server.conftest import start, tiny_scenario


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_idempotent_calls_retry_unavailable_others_do_not(tmp_path: Path) -> None:
    port = _free_port()
    with AllocationClient(f"127.0.0.1:{port}", timeout=5) as client:
        # nothing listens yet: a non-idempotent call fails at once with UNAVAILABLE
        with pytest.raises(AllocationError) as info:
            client.create_scenario("x", tiny_scenario())
        assert info.value.code == grpc.StatusCode.UNAVAILABLE

        holder: dict[str, object] = {}

        def late_start() -> None:
            time.sleep(0.3)
            holder["server"] = start(tmp_path, address=f"127.0.0.1:{port}", workers=1)

        starter = threading.Thread(target=late_start)
        starter.start()
        try:
            # a read retried with backoff reaches the server once it is up: NOT_FOUND, not UNAVAILABLE
            with pytest.raises(AllocationError) as info:
                client.get_scenario("missing")
            assert info.value.code == grpc.StatusCode.NOT_FOUND
        finally:
            starter.join(60)
            server = holder.get("server")
            if server is not None:
                server.stop(grace=0.5)  # type: ignore[attr-defined]
