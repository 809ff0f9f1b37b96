"""TLS and mutual TLS on real servers, with a CA and certificates made by the test (trustme).

What a deployment relies on: HTTPS with the documented variables, nothing served in clear on
the TLS port, client certificates required (for every route or for /admin/* alone), a
certificate replaced on disk served to the next connection without a restart, and a bad file
refused at start-up with one line and exit status 2."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
import trustme
from cryptography import x509

from tests.support import stream as s
from tests.support.nats import nats_server
from tests.support.servers import gridscore_serve
from tests.support.tools import require_tool

READING = {"readings": [{"voltage": 230.0, "current": 10.0, "frequency": 50.0}]}


class Pki:
    """A CA, the server's certificate for localhost and 127.0.0.1, and files for each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file = folder / "tls.crt"
        self.key_file = folder / "tls.key"
        self.issue_server()

    def issue_server(self) -> trustme.LeafCert:
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        # As cert-manager's Secret volume does: the new files appear at once (a rename each).
        for blob, path in ((leaf.private_key_pem, self.key_file), (leaf.cert_chain_pems, None)):
            if path is not None:
                tmp = path.with_suffix(".tmp")
                blob.write_to_path(str(tmp))
                os.replace(tmp, path)
        tmp = self.cert_file.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            for pem in leaf.cert_chain_pems:
                handle.write(pem.bytes())
        os.replace(tmp, self.cert_file)
        return leaf

    def client(self, name: str, ca: trustme.CA | None = None) -> tuple[Path, Path]:
        leaf = (ca or self.ca).issue_cert(f"{name}@clients.example")
        cert, key = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key

    def env(self, **extra: str) -> dict[str, str]:
        return {"TLS_CERT_FILE": str(self.cert_file), "TLS_KEY_FILE": str(self.key_file), **extra}

    def context(self, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client is not None:
            context.load_cert_chain(str(client[0]), str(client[1]))
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def tls_server(model_dir: Path, tmp_path: Path, pki: Pki) -> Iterator[str]:
    with gridscore_serve(model_dir, tmp_path, command="api", tls=pki.context(), **pki.env()) as s:
        yield s.url


def test_https_serves_with_the_readmes_variables(tls_server: str, pki: Pki) -> None:
    answer = httpx.post(f"{tls_server}/predict", json=READING, verify=pki.context())
    assert answer.status_code == 200
    assert answer.json()["predictions"][0]["anomaly"] is False


@pytest.mark.system
def test_curl_as_the_readme_shows_it(tls_server: str, pki: Pki) -> None:
    curl = require_tool("curl", "curl")
    url = tls_server.replace("127.0.0.1", "localhost")
    done = subprocess.run(
        [curl, "-sS", "--cacert", str(pki.ca_file), f"{url}/health"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"status":"ok"' in done.stdout.replace(" ", "")


def test_plain_http_to_the_tls_port_gets_no_http_answer(tls_server: str) -> None:
    port = int(tls_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert not answer.startswith(b"HTTP/"), answer[:100]
    assert b'"status"' not in answer


def test_an_untrusted_client_refuses_the_certificate(tls_server: str) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server}/health")  # the system's CAs do not know the test's CA


def _refused(url: str, context: ssl.SSLContext) -> bool:
    try:
        answer = httpx.get(url, verify=context)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return answer.status_code != 200


def test_mutual_tls_for_every_route(model_dir: Path, tmp_path: Path, pki: Pki) -> None:
    good = pki.client("grid-ops")
    stranger = pki.client("stranger", ca=trustme.CA())
    env = pki.env(TLS_CLIENT_CA_FILE=str(pki.ca_file))
    with gridscore_serve(model_dir, tmp_path, command="api", tls=pki.context(good), **env) as s:
        assert _refused(f"{s.url}/health", pki.context())  # no certificate
        assert _refused(f"{s.url}/health", pki.context(stranger))  # another CA's
        served = httpx.post(f"{s.url}/predict", json=READING, verify=pki.context(good))
        assert served.status_code == 200


def test_mutual_tls_for_the_admin_routes_alone(model_dir: Path, tmp_path: Path, pki: Pki) -> None:
    good = pki.client("platform")
    stranger = pki.client("stranger", ca=trustme.CA())
    env = pki.env(TLS_CLIENT_CA_FILE=str(pki.ca_file), TLS_CLIENT_AUTH="admin", ADMIN_KEY="adm1n")
    with gridscore_serve(model_dir, tmp_path, command="api", tls=pki.context(), **env) as s:
        anonymous = pki.context()
        assert httpx.post(f"{s.url}/predict", json=READING, verify=anonymous).status_code == 200
        headers = {"X-Admin-Key": "adm1n"}
        refused = httpx.post(f"{s.url}/admin/shadow/clear", headers=headers, verify=anonymous)
        assert refused.status_code == 403
        assert "client certificate" in refused.json()["detail"]
        assert _refused(f"{s.url}/health", pki.context(stranger))  # a bad one fails the handshake
        served = httpx.post(
            f"{s.url}/admin/shadow/clear", headers=headers, verify=pki.context(good)
        )
        assert served.status_code == 200, served.text


def _serial(url: str, context: ssl.SSLContext) -> int:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.slow
def test_a_certificate_replaced_on_disk_is_served_without_restart_under_load(
    model_dir: Path, tmp_path: Path, pki: Pki
) -> None:
    env = pki.env(WORKERS="2")
    with gridscore_serve(model_dir, tmp_path, command="api", tls=pki.context(), **env) as s:
        before = _serial(s.url, pki.context())
        failures: list[str] = []
        done = threading.Event()
        counts = {"keep_alive": 0, "new_connection": 0}

        def keep_alive() -> None:
            with httpx.Client(verify=pki.context()) as client:
                while not done.is_set():
                    try:
                        answer = client.post(f"{s.url}/predict", json=READING)
                    except httpx.HTTPError as exc:
                        failures.append(f"keep-alive: {exc!r}")
                        continue
                    counts["keep_alive"] += 1
                    if answer.status_code != 200:
                        failures.append(f"keep-alive {answer.status_code}")

        def new_connections() -> None:
            while not done.is_set():
                try:
                    answer = httpx.post(f"{s.url}/predict", json=READING, verify=pki.context())
                except httpx.HTTPError as exc:
                    failures.append(f"new connection: {exc!r}")
                    continue
                counts["new_connection"] += 1
                if answer.status_code != 200:
                    failures.append(f"new connection {answer.status_code}")

        threads = [threading.Thread(target=keep_alive), threading.Thread(target=new_connections)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            renewed = pki.issue_server()
            deadline = time.monotonic() + 5
            after = before
            while after == before and time.monotonic() < deadline:
                time.sleep(0.1)
                after = _serial(s.url, pki.context())
            # Each worker looks at the files every second: from a second after the first
            # worker served the new certificate, every new connection (either worker) gets it.
            time.sleep(1.1)
            seen = {_serial(s.url, pki.context()) for _ in range(20)}
            time.sleep(0.5)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=10)
        assert after != before, "the old certificate was still served 5 s after the renewal"
        assert seen == {after}
        assert (
            after
            == x509.load_pem_x509_certificate(renewed.cert_chain_pems[0].bytes()).serial_number
        )
        assert failures == [], failures[:5]
        assert counts["keep_alive"] > 50, counts
        assert counts["new_connection"] > 20, counts
        assert "certificate reloaded" in s.log()


def _start(model_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MODEL_DIR": str(model_dir), "PORT": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "app", "api"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing certificate", "TLS_CERT_FILE"),
        ("key of another certificate", "is not the key of the certificate"),
        ("certificate file not PEM", "not a PEM certificate and key"),
        ("client CA not PEM", "TLS_CLIENT_CA_FILE"),
        ("certificate without key", "TLS needs both TLS_CERT_FILE and TLS_KEY_FILE"),
        ("client CA without TLS", "mutual TLS is TLS"),
        ("dashboard CA missing", "BACKEND_CA_FILE"),
        ("broker CA not PEM", "NATS_CA_FILE"),
        ("broker certificate without key", "NATS_CERT_FILE and NATS_KEY_FILE go together"),
        ("broker key of another certificate", "is not the key of the certificate in NATS_CERT"),
    ],
)
def test_a_bad_tls_file_stops_start_up_with_one_line(
    model_dir: Path, pki: Pki, case: str, expected: str
) -> None:
    other = trustme.CA().issue_cert("localhost")
    other_key = pki.folder / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    junk = pki.folder / "junk.pem"
    junk.write_bytes(b"not a certificate\n")
    env = {
        "missing certificate": pki.env(TLS_CERT_FILE=str(pki.folder / "absent.crt")),
        "key of another certificate": pki.env(TLS_KEY_FILE=str(other_key)),
        "certificate file not PEM": pki.env(TLS_CERT_FILE=str(junk)),
        "client CA not PEM": pki.env(TLS_CLIENT_CA_FILE=str(junk)),
        "certificate without key": {"TLS_CERT_FILE": str(pki.cert_file)},
        "client CA without TLS": {"TLS_CLIENT_CA_FILE": str(pki.ca_file)},
        "dashboard CA missing": {"BACKEND_CA_FILE": str(pki.folder / "absent-ca.pem")},
        "broker CA not PEM": {"NATS_CA_FILE": str(junk)},
        "broker certificate without key": {"NATS_CERT_FILE": str(pki.cert_file)},
        "broker key of another certificate": {
            "NATS_CERT_FILE": str(pki.cert_file),
            "NATS_KEY_FILE": str(other_key),
        },
    }[case]
    done = _start(model_dir, **env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gridscore: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr


def test_the_dashboard_talks_to_its_scorer_over_https(
    model_dir: Path, tmp_path: Path, pki: Pki
) -> None:
    # One process: the dashboard's requests go to this process's own HTTPS listener.
    with gridscore_serve(model_dir, tmp_path, command="serve", tls=pki.context(), **pki.env()) as s:
        panel = httpx.get(f"{s.url}/dashboard/model", verify=pki.context())
        assert panel.status_code == 200
        digest = httpx.get(f"{s.url}/health", verify=pki.context()).json()["model"]["digest"]
        assert digest[:12] in panel.text


def test_a_dashboard_of_its_own_trusts_the_scorer_through_its_ca_file(
    model_dir: Path, tmp_path: Path, pki: Pki, tls_server: str
) -> None:
    backend = tls_server.replace("127.0.0.1", "localhost")  # the name in the certificate
    env = {"BACKEND_URL": backend, "BACKEND_CA_FILE": str(pki.ca_file), **pki.env()}
    with gridscore_serve(
        model_dir, tmp_path, command="dashboard", tls=pki.context(), **env
    ) as dashboard:
        panel = httpx.get(f"{dashboard.url}/dashboard/model", verify=pki.context())
        digest = httpx.get(f"{tls_server}/health", verify=pki.context()).json()["model"]["digest"]
        assert digest[:12] in panel.text
    # Without the CA file the dashboard does not trust the scorer, and says so.
    env = {"BACKEND_URL": backend}
    with gridscore_serve(model_dir, tmp_path, command="dashboard", **env) as dashboard:
        panel = httpx.get(f"{dashboard.url}/dashboard/model")
        assert digest[:12] not in panel.text


def test_the_stream_worker_speaks_mutual_tls_to_its_broker_and_https_on_its_health_port(
    model_dir: Path, tmp_path: Path, pki: Pki
) -> None:
    worker_cert, worker_key = pki.client("stream-worker")
    device_cert, device_key = pki.client("feeder-gateway")
    broker_env = {
        "NATS_CA_FILE": str(pki.ca_file),
        "NATS_CERT_FILE": str(worker_cert),
        "NATS_KEY_FILE": str(worker_key),
        "STREAM_LEASE_SECONDS": "3",
    }

    async def publish_and_collect(url: str) -> list[s.StreamVerdict]:
        device = pki.context((device_cert, device_key))
        nc = await nats.connect(url, tls=device)
        js = nc.jetstream(timeout=10)
        await s.publish(js, 40)
        verdicts = await s.wait_for_verdicts(js, 40, timeout=60)
        await nc.close()
        return verdicts

    def refused_without_a_certificate(port: int) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            assert b'"tls_required":true' in raw.recv(4096)  # NATS's INFO, then TLS
            with pki.context().wrap_socket(raw, server_hostname="127.0.0.1") as stranger:
                try:
                    stranger.sendall(b"CONNECT {}\r\nPING\r\n")
                    return b"PONG" not in stranger.recv(4096)
                except (ssl.SSLError, ConnectionError):
                    return True

    with nats_server(tls=(pki.cert_file, pki.key_file, pki.ca_file)) as broker:
        assert broker.url.startswith("tls://")
        with gridscore_serve(
            model_dir,
            tmp_path,
            command="stream",
            tls=pki.context(),
            timeout=90,
            NATS_URL=broker.url,
            **pki.env(**broker_env),
        ) as worker:
            # /health answered 200 over HTTPS: the model loaded and the broker connected.
            health = httpx.get(f"{worker.url}/health", verify=pki.context()).json()
            assert health["broker"] == "connected"
            verdicts = asyncio.run(publish_and_collect(broker.url))
            assert len({v.seq for v in verdicts}) == 40
            assert refused_without_a_certificate(broker.port)
        # A worker without its certificate is refused by the broker: not ready, and says why.
        without = {
            k: v for k, v in broker_env.items() if k not in ("NATS_CERT_FILE", "NATS_KEY_FILE")
        }
        with (
            pytest.raises(TimeoutError) as not_ready,
            gridscore_serve(
                model_dir,
                tmp_path,
                command="stream",
                timeout=15,
                NATS_URL=broker.url,
                **without,
            ),
        ):
            pass
        assert "Traceback" not in str(not_ready.value)
        assert str(not_ready.value).count("broker not reachable; retrying with backoff") == 1
