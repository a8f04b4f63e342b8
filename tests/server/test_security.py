"""Transport security and authentication (issue 11) against real servers: real gRPC over real
channels, real SQLite files, real worker processes, real API tokens in the server's database.

Certificates are made at run time with ``cryptography`` (a throwaway CA, a server certificate for
localhost/127.0.0.1, a client certificate of that CA, and one of an unknown CA) under the test's
temporary directory: no key is committed."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from lepton_alloc.clients import client as client_module
from lepton_alloc.clients.client import AllocationClient, AllocationError, AsyncAllocationClient
from lepton_alloc.server.app import RunningServer, is_loopback_address, serve_forever
from lepton_alloc.server.auth import MISSING_TOKEN, bearer_token, peer_is_loopback
from lepton_alloc.server.config import load_config
from lepton_alloc.server.store import open_store

from .conftest import TINY_OPTIMUM, start, tiny_scenario

SERVICE = "lepton.allocation.v1.AllocationService"
UNAUTHENTICATED, UNAVAILABLE = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------------------ certificates
@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_ca: Path
    stranger_cert: Path  # a client certificate of a CA the server does not know
    stranger_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool = False,
                 sans: list[x509.GeneralName] | None = None, usage: Any = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: Any = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key = _key(), _key()
    ca = _certificate("Lepton test CA", ca_key, "Lepton test CA", ca_key, ca=True)
    other = _certificate("Unknown CA", other_key, "Unknown CA", other_key, ca=True)
    server_key, client_key, stranger_key = _key(), _key(), _key()
    server = _certificate("localhost", server_key, "Lepton test CA", ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH,
                          sans=[x509.DNSName("localhost"), x509.DNSName("lepton.internal"),
                                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _certificate("ci-client", client_key, "Lepton test CA", ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger = _certificate("mallory", stranger_key, "Unknown CA", other_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(ca=_write(d / "ca.pem", ca), server_cert=_write(d / "server.pem", server),
               server_key=_write(d / "server.key", key=server_key), client_cert=_write(d / "client.pem", client),
               client_key=_write(d / "client.key", key=client_key), stranger_ca=_write(d / "unknown-ca.pem", other),
               stranger_cert=_write(d / "stranger.pem", stranger), stranger_key=_write(d / "stranger.key", key=stranger_key))


# ------------------------------------------------------------------------------ servers
@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RunningServer]:
    running = start(tmp_path_factory.mktemp("tls"), workers=1, tls_cert=str(pki.server_cert),
                    tls_key=str(pki.server_key))
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RunningServer]:
    running = start(tmp_path_factory.mktemp("mtls"), workers=1, tls_cert=str(pki.server_cert),
                    tls_key=str(pki.server_key), tls_client_ca=str(pki.ca))
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Plaintext on loopback, but anonymous loopback callers refused: every caller is treated
    like a remote one and needs a token."""
    running = start(tmp_path_factory.mktemp("tokens"), workers=1, allow_anonymous_loopback=False)
    yield running
    running.stop(grace=1.0)


@pytest.fixture(autouse=True)
def no_connection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's environment reaches these clients; no retry of a refused call."""
    for name in client_module.SECURITY_ENV.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client_module, "RETRY_DELAYS", ())


def _code(fn: Any) -> grpc.StatusCode:
    with pytest.raises(AllocationError) as ei:
        fn()
    return ei.value.code


def _address(running: RunningServer) -> str:
    return f"127.0.0.1:{running.port}"


# ------------------------------------------------------------------------------ TLS
def test_a_plaintext_channel_to_a_tls_server_fails(tls_server: RunningServer) -> None:
    with AllocationClient(_address(tls_server), timeout=5) as c:
        assert _code(lambda: c.validate(tiny_scenario())) == UNAVAILABLE
    with grpc.insecure_channel(_address(tls_server)) as channel:  # the health service is no way in either
        with pytest.raises(grpc.RpcError) as ei:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert ei.value.code() == UNAVAILABLE


def test_tls_with_the_right_ca_solves_and_stores(tls_server: RunningServer, pki: Pki) -> None:
    with AllocationClient(_address(tls_server), timeout=60, tls_ca=str(pki.ca)) as c:
        assert c.validate(tiny_scenario()).valid
        assert c.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM)
        stored = c.create_scenario("tls-plan", tiny_scenario(), description="over TLS")
        assert c.get_scenario("tls-plan").sha256 == stored.sha256
    # an anonymous loopback caller is the local identity, in the audit too
    assert tls_server.store.list_audit(tenant="local")[0].who == "local/local"


def test_tls_checks_the_server_name_and_the_ca(tls_server: RunningServer, pki: Pki) -> None:
    # the name in the certificate given explicitly (a load balancer's address, an IP without SAN)
    with AllocationClient(_address(tls_server), timeout=10, tls_ca=str(pki.ca), tls_server_name="lepton.internal") as c:
        assert c.validate(tiny_scenario()).valid
    with AllocationClient(_address(tls_server), timeout=5, tls_ca=str(pki.ca), tls_server_name="elsewhere.example") as c:
        assert _code(lambda: c.validate(tiny_scenario())) == UNAVAILABLE
    with AllocationClient(_address(tls_server), timeout=5, tls_ca=str(pki.stranger_ca)) as c:  # not the server's CA
        assert _code(lambda: c.validate(tiny_scenario())) == UNAVAILABLE


def test_the_client_reads_its_ca_from_the_environment(tls_server: RunningServer, pki: Pki,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_TLS_CA", str(pki.ca))
    with AllocationClient(_address(tls_server), timeout=10) as c:
        assert c.validate(tiny_scenario()).valid
    with pytest.raises(ValueError, match="cannot read the TLS CA certificate /nonexistent/ca.pem"):
        AllocationClient(_address(tls_server), tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="needs both tls_cert and tls_key"):
        AllocationClient(_address(tls_server), tls_cert=str(pki.client_cert))


def test_the_async_client_over_tls(tls_server: RunningServer, pki: Pki) -> None:
    async def run() -> None:
        async with AsyncAllocationClient(_address(tls_server), timeout=60, tls_ca=str(pki.ca)) as c:
            assert (await c.solve(tiny_scenario())).objective_value == pytest.approx(TINY_OPTIMUM)

    asyncio.run(run())


# ------------------------------------------------------------------------------ mutual TLS
def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_server: RunningServer, pki: Pki) -> None:
    with AllocationClient(_address(mtls_server), timeout=5, tls_ca=str(pki.ca)) as c:
        assert _code(lambda: c.validate(tiny_scenario())) == UNAVAILABLE


def test_mutual_tls_refuses_a_certificate_of_an_unknown_ca(mtls_server: RunningServer, pki: Pki) -> None:
    with AllocationClient(_address(mtls_server), timeout=5, tls_ca=str(pki.ca), tls_cert=str(pki.stranger_cert),
                          tls_key=str(pki.stranger_key)) as c:
        assert _code(lambda: c.validate(tiny_scenario())) == UNAVAILABLE


def test_mutual_tls_accepts_the_right_certificate(mtls_server: RunningServer, pki: Pki) -> None:
    with AllocationClient(_address(mtls_server), timeout=60, tls_ca=str(pki.ca), tls_cert=str(pki.client_cert),
                          tls_key=str(pki.client_key)) as c:
        assert c.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM)
        c.create_scenario("mtls-plan", tiny_scenario())
        assert [s.name for s in c.list_scenarios()[0]] == ["mtls-plan"]


# ------------------------------------------------------------------------------ start-up checks
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_non_loopback_bind_without_tls_refuses_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"refusing to listen on 0\.0\.0\.0:0 without TLS.*--allow-insecure-bind"):
        start(tmp_path, address="0.0.0.0:0", workers=1)
    assert not (tmp_path / "lepton.db").exists()  # refused before anything started
    # `lepton-alloc serve`: one line naming the address and the flag, exit 2
    cfg = load_config(None, {"address": "0.0.0.0:0", "database": str(tmp_path / "lepton.db")}, env={})
    assert serve_forever(cfg) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0.0.0.0:0" in err[0] and "--allow-insecure-bind" in err[0], err


def test_allow_insecure_bind_starts_and_warns(tmp_path: Path) -> None:
    records = _Records()
    logging.getLogger("lepton_alloc.server").addHandler(records)
    try:
        running = start(tmp_path, address="0.0.0.0:0", workers=1, allow_insecure_bind=True)
    finally:
        logging.getLogger("lepton_alloc.server").removeHandler(records)
    try:
        assert any("0.0.0.0:0 WITHOUT TLS" in m for m in records.messages), records.messages
        with AllocationClient(_address(running), timeout=30) as c:  # loopback traffic only
            assert c.validate(tiny_scenario()).valid
    finally:
        running.stop(grace=1.0)


def test_certificate_problems_stop_start_up_with_one_line_naming_the_file(tmp_path: Path, pki: Pki) -> None:
    missing = str(tmp_path / "no-such-cert.pem")
    with pytest.raises(ValueError, match=f"cannot read the TLS certificate {missing}: No such file"):
        start(tmp_path, tls_cert=missing, tls_key=str(pki.server_key))
    with pytest.raises(ValueError, match="TLS needs both tls_cert and tls_key"):
        start(tmp_path, tls_cert=str(pki.server_cert))
    with pytest.raises(ValueError, match="tls_client_ca .* needs tls_cert and tls_key"):
        start(tmp_path, tls_client_ca=str(pki.ca))
    with pytest.raises(ValueError, match=f"the TLS key {pki.server_cert} is not a PEM file"):
        start(tmp_path, tls_cert=str(pki.server_cert), tls_key=str(pki.server_cert))
    # a key that is not the certificate's: found when the port is opened
    with pytest.raises(RuntimeError, match=f"the TLS key {pki.client_key} does not match the certificate"):
        start(tmp_path, workers=1, tls_cert=str(pki.server_cert), tls_key=str(pki.client_key))


def test_loopback_addresses_and_peers() -> None:
    for address in ("127.0.0.1:50051", "localhost:0", "[::1]:50051", "127.1.2.3:1", "unix:/run/lepton.sock"):
        assert is_loopback_address(address), address
    for address in ("0.0.0.0:50051", "[::]:0", ":50051", "10.0.0.5:50051", "lepton.example.com:443"):
        assert not is_loopback_address(address), address
    for peer in ("ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "ipv6:%5B::1%5D:5555", "ipv6:[::ffff:127.0.0.1]:1",
                 "unix:/tmp/s", "unix-abstract:x"):
        assert peer_is_loopback(peer), peer
    for peer in ("ipv4:10.1.2.3:5555", "ipv6:[2001:db8::1]:5555", "ipv6:[::ffff:10.0.0.1]:1", "", "dns:127.0.0.1",
                 "ipv4:localhost:1"):
        assert not peer_is_loopback(peer), peer
    assert bearer_token([]) is None and bearer_token([("x-lepton-user", "a")]) is None
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    for bad in ([("authorization", "Basic abc")], [("authorization", "abc")], [("authorization", "Bearer ")],
                [("authorization", "Bearer a"), ("authorization", "Bearer b")]):
        assert bearer_token(bad) == "", bad


# ------------------------------------------------------------------------------ tokens
def _token(running: RunningServer, tenant: str, name: str) -> tuple[str, str]:
    """(token id, secret) of a new token in the server's database, as `lepton-alloc tokens create`."""
    with open_store(running.config.database) as admin:
        record, secret = admin.create_token(tenant, name)
    return record.token_id, secret


def test_a_missing_token_from_a_non_loopback_peer_is_unauthenticated(token_server: RunningServer) -> None:
    with AllocationClient(_address(token_server), timeout=10) as c:
        with pytest.raises(AllocationError) as ei:
            c.list_scenarios()
        assert ei.value.code == UNAUTHENTICATED and ei.value.message == MISSING_TOKEN
        assert _code(lambda: c.create_scenario("x", tiny_scenario())) == UNAUTHENTICATED
        assert _code(lambda: list(c.watch("no-such-job"))) == UNAUTHENTICATED  # streams too


def test_a_wrong_or_malformed_token_is_unauthenticated(token_server: RunningServer, tls_server: RunningServer,
                                                       pki: Pki) -> None:
    _, secret = _token(token_server, "acme", "wrong-token-test")
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")  # the right id, a wrong secret
    messages = set()
    for token in ("nonsense", forged, "lep.0000000000000000." + "x" * 40, secret + "x"):
        with AllocationClient(_address(token_server), timeout=10, token=token) as c:
            with pytest.raises(AllocationError) as ei:
                c.list_scenarios()
            assert ei.value.code == UNAUTHENTICATED, token
            messages.add(ei.value.message)
    assert messages == {"invalid API token"}  # never which part was wrong
    with AllocationClient(_address(token_server), timeout=10, metadata=[("authorization", "Basic dXNlcjpwdw==")]) as c:
        assert _code(lambda: c.list_scenarios()) == UNAUTHENTICATED
    # a wrong token is refused on loopback too, where a caller without one would be let in
    with AllocationClient(_address(tls_server), timeout=10, tls_ca=str(pki.ca), token=forged) as c:
        assert _code(lambda: c.validate(tiny_scenario())) == UNAUTHENTICATED


def test_a_revoked_token_is_unauthenticated(token_server: RunningServer) -> None:
    token_id, secret = _token(token_server, "acme", "soon-revoked")
    with AllocationClient(_address(token_server), timeout=10, token=secret) as c:
        c.list_scenarios()
        with open_store(token_server.config.database) as admin:
            admin.revoke_token(token_id)
        assert _code(lambda: c.list_scenarios()) == UNAUTHENTICATED  # at once, no restart


def test_a_valid_token_works_and_the_audit_names_its_identity(token_server: RunningServer) -> None:
    _, secret = _token(token_server, "acme", "ci-bot")
    with AllocationClient(_address(token_server), timeout=60, token=secret,
                          metadata=[("x-lepton-user", "mallory")]) as c:
        c.create_scenario("acme-plan", tiny_scenario())
        job = c.submit(tiny_scenario())
        assert job.result(timeout=60).objective_value == pytest.approx(TINY_OPTIMUM)
        assert [s.name for s in c.list_scenarios()[0]] == ["acme-plan"]
    audit = token_server.store.list_audit(tenant="acme")
    assert {a.action for a in audit} >= {"create_scenario", "submit_solve"}
    assert {a.who for a in audit} == {"acme/ci-bot"}
    assert token_server.store.get_job(job.job_id).who == "acme/ci-bot"


def test_the_async_client_sends_its_token(token_server: RunningServer) -> None:
    _, secret = _token(token_server, "acme", "async-bot")

    async def run() -> None:
        async with AsyncAllocationClient(_address(token_server), timeout=60, token=secret) as c:
            assert (await c.validate(tiny_scenario())).valid
        async with AsyncAllocationClient(_address(token_server), timeout=60) as c:
            with pytest.raises(AllocationError) as ei:
                await c.validate(tiny_scenario())
            assert ei.value.code == UNAUTHENTICATED

    asyncio.run(run())


def test_health_and_reflection_answer_without_a_token(token_server: RunningServer) -> None:
    with grpc.insecure_channel(_address(token_server)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                       timeout=10))
        assert SERVICE in {s.name for s in replies[0].list_services_response.service}


# ------------------------------------------------------------------------------ the CLI
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEPTON_")}
    return subprocess.run([sys.executable, "-m", "lepton_alloc.clients.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**clean, **(env or {})})


def test_tokens_cli_and_the_global_connection_flags(token_server: RunningServer) -> None:
    import json

    db, server = token_server.config.database, _address(token_server)
    made = _cli("tokens", "create", "--tenant", "globex", "--name", "cli-bot", "--database", db, "--json")
    assert made.returncode == 0, made.stderr
    assert "NOT SHOWN AGAIN" in made.stderr
    created = json.loads(made.stdout)
    secret, token_id = created["token"], created["token_id"]
    plain = _cli("tokens", "create", "--tenant", "globex", "--name", "plain-bot", "--database", db)
    assert plain.returncode == 0 and plain.stdout.strip().startswith("lep."), plain.stderr
    # the token before the command, after it, or in the environment
    for args, env in ((("--token", secret, "scenarios", "list", "--server", server, "--json"), None),
                      (("scenarios", "list", "--server", server, "--token", secret, "--json"), None),
                      (("scenarios", "list", "--server", server, "--json"), {"LEPTON_TOKEN": secret})):
        ok = _cli(*args, env=env)
        assert ok.returncode == 0, ok.stderr
    refused = _cli("scenarios", "list", "--server", server)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr and secret not in refused.stderr
    listed = _cli("tokens", "list", "--tenant", "globex", "--database", db)
    assert listed.returncode == 0 and token_id in listed.stdout and "cli-bot" in listed.stdout
    assert secret not in listed.stdout
    revoked = _cli("tokens", "revoke", token_id, "--database", db)
    assert revoked.returncode == 0 and "revoked" in revoked.stderr, revoked.stderr
    after = _cli("--token", secret, "scenarios", "list", "--server", server)
    assert after.returncode == 1 and "UNAUTHENTICATED" in after.stderr
    rows = json.loads(_cli("tokens", "list", "--tenant", "globex", "--database", db, "--json").stdout)
    assert [r["revoked_at"] is not None for r in rows if r["token_id"] == token_id] == [True]
    unknown = _cli("tokens", "revoke", "0123456789abcdef", "--database", db)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    typo = _cli("tokens", "create", "--tenant", "globex", "--name", "x", "--database", db + "-typo")
    assert typo.returncode == 2 and "does not exist" in typo.stderr and not os.path.exists(db + "-typo")


def test_the_cli_over_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    server = _address(mtls_server)
    ok = _cli("--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
              "jobs", "--server", server, "--json")
    assert ok.returncode == 0, ok.stderr
    refused = _cli("--tls-ca", str(pki.ca), "jobs", "--server", server)
    assert refused.returncode == 3 and "UNAVAILABLE" in refused.stderr
    unreadable = _cli("--tls-ca", "/nonexistent/ca.pem", "jobs", "--server", server)
    assert unreadable.returncode == 2 and "/nonexistent/ca.pem" in unreadable.stderr
