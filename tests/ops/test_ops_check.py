"""The ops check passes on the repository and fails on a broken copy of each kind of file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.system


def _check(ops_dir: Path) -> subprocess.CompletedProcess[str]:
    require_tool("promtool", "prometheus")
    if not (ROOT / ".venv-ops" / "bin" / "checkov").exists() and not shutil.which("checkov"):
        pytest.fail("the ops tools are missing: make ops-check (or make test) installs them")
    return subprocess.run(
        [sys.executable, str(ROOT / "ops" / "check.py"), "--ops-dir", str(ops_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ops_check_passes() -> None:
    done = _check(ROOT / "ops")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ops check passed" in done.stdout
    for step in (
        "yamllint",
        "kubernetes-validate --strict",
        "hadolint",
        "compose schema",
        "kserve schema servingruntime.yaml",
        "kserve schema inferenceservice.yaml",
        "checkov kubernetes",
        "promtool test rules",
        "grafana dashboard",
    ):
        assert f"ok    {step}" in done.stdout


def _replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def damage(ops: Path) -> None:
        path = ops / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return damage


BROKEN = {
    # A field of the wrong type in a Deployment.
    "manifest": (
        _replace("k8s/backend-deployment.yaml", "containerPort: 8000", 'containerPort: "eight"'),
        "kubernetes-validate --strict",
    ),
    "unknown apiVersion": (
        _replace("k8s/backend-hpa.yaml", "autoscaling/v2", "autoscaling/v9"),
        "kubernetes-validate --strict",
    ),
    "Dockerfile": (
        _replace("Dockerfile.dashboard", "WORKDIR /srv", "RUN cd /srv"),
        "hadolint",
    ),
    "rule": (
        _replace("prometheus/rules.yml", "> 0.01", "> > 0.01"),
        "promtool check rules",
    ),
    "rule test": (
        _replace("prometheus/rules_test.yml", "3% of /predict", "30% of /predict"),
        "promtool test rules",
    ),
    # A panel reading a series no rule records (a renamed rule, a typo) shows nothing.
    "dashboard": (
        _replace("grafana/gridscore.json", "gridscore:drift_psi:1h", "gridscore:drift_psi:2h"),
        "grafana dashboard",
    ),
    "compose": (
        _replace("compose.yaml", "stop_grace_period: 20s", "stop_grace_periods: 20s"),
        "compose schema",
    ),
    # A misspelt field in a KServe resource: the API server would drop it without a word.
    "kserve runtime": (
        _replace("kserve/servingruntime.yaml", "containerPort: 8080", "containerPorts: 8080"),
        "kserve schema servingruntime.yaml",
    ),
    "kserve service": (
        _replace("kserve/inferenceservice.yaml", "scaleMetric: cpu", "scaleMetric: gpu"),
        "kserve schema inferenceservice.yaml",
    ),
    # KEDA's trigger metadata are strings: an unquoted number is refused by the API server.
    "keda number": (
        _replace(
            "k8s/stream/stream-scaledobject.yaml", 'lagThreshold: "20000"', "lagThreshold: 20000"
        ),
        "keda schema ScaledObject",
    ),
    "keda field": (
        _replace("k8s/stream/stream-scaledobject.yaml", "maxReplicaCount: 8", "maxReplicas: 8"),
        "keda schema ScaledObject",
    ),
    "tls manifest": (
        _replace("k8s-tls/ingress.yaml", "pathType: Prefix", "pathKind: Prefix"),
        "kubernetes-validate --strict tls",
    ),
    "tls policy": (
        _replace(
            "k8s-tls/backend-tls.yaml",
            "          volumeMounts:\n            - name: tls",
            "          securityContext:\n            allowPrivilegeEscalation: true\n"
            "          volumeMounts:\n            - name: tls",
        ),
        "checkov kubernetes tls",
    ),
    "stream manifest": (
        _replace("k8s/stream/nats-statefulset.yaml", "replicas: 3", 'replicas: "three"'),
        "kubernetes-validate --strict stream",
    ),
    "stream policy": (
        _replace(
            "k8s/stream/stream-deployment.yaml",
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
        ),
        "checkov kubernetes stream",
    ),
    "nats config": (
        _replace("nats/compose.conf", "max_file_store: 1GB", "max_file_store: lots"),
        "nats-server -t nats/compose.conf",
    ),
    "policy": (
        _replace(
            "k8s/ui-deployment.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
        "checkov kubernetes",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BROKEN))
def test_ops_check_fails_on_a_broken_copy(kind: str, tmp_path: Path) -> None:
    damage, step = BROKEN[kind]
    ops = tmp_path / "ops"
    shutil.copytree(ROOT / "ops", ops)
    damage(ops)
    done = _check(ops)
    assert done.returncode == 1, done.stdout
    assert f"FAIL  {step}" in done.stdout
