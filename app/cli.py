"""The ``gridscore`` command: serve the API (converting the model first when allowed)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from app.config import Settings, SettingsError
from app.config.envelope import EnvelopeError
from app.model import artifact
from app.model.envelope import configured

EXIT_CONFIG = 2


def _fail(message: str) -> int:
    print(f"gridscore: {message}", file=sys.stderr)
    return EXIT_CONFIG


def ensure_artifact(settings: Settings) -> str | None:
    """Make sure an artifact exists; returns an error message when it cannot."""
    if artifact.find(settings.model.dir, settings.model.name, settings.model.digest):
        return None
    where = f"{settings.model.dir}/{settings.model.name}-<digest>.onnx"
    if settings.model.digest:
        return f"no artifact {where} with digest {settings.model.digest} (MODEL_DIGEST)"
    if not settings.model.train_if_missing:
        return (
            f"no model artifact at {where} and TRAIN_IF_MISSING=0; "
            "run `python -m convert` first (needs the training extra: pip install '.[train]')"
        )
    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("skl2onnx") is None:
        return (
            f"no model artifact at {where}; TRAIN_IF_MISSING=1 but the training extra is not "
            "installed (pip install '.[train]'), or provide an artifact in MODEL_DIR"
        )
    print(
        f"gridscore: no artifact at {where}; running the convert step", file=sys.stderr, flush=True
    )
    # A separate process: scikit-learn never enters the serving process's memory.
    command = [
        sys.executable,
        "-m",
        "convert",
        "--model-dir",
        str(settings.model.dir),
        "--name",
        settings.model.name,
    ]
    if subprocess.run(command, check=False).returncode != 0:
        return "the convert step failed (see its output above)"
    return None


def check_envelope(settings: Settings) -> str | None:
    """A configuration error in the envelope stops the launch (a bad artifact does not: the
    server then reports it on /health, and its log says why)."""
    path = artifact.find(settings.model.dir, settings.model.name, settings.model.digest)
    try:
        meta = artifact.load(path).metadata if path else None
    except artifact.ArtifactError:
        return None
    if meta is None:
        return None
    try:
        configured(meta, settings)
    except EnvelopeError as exc:
        return f"envelope configuration: {exc}"
    return None


def prepare_metrics_dir(settings: Settings) -> str:
    """A fresh multiprocess metrics folder, exported for the workers; returns its path."""
    directory = settings.server.metrics_dir or tempfile.mkdtemp(prefix="gridscore-metrics-")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    # Values left by an earlier run would be summed into this one's.
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


def prepare_control_dir(settings: Settings) -> str:
    """A folder where the workers agree on the model to serve, exported for them."""
    directory = settings.server.control_dir or tempfile.mkdtemp(prefix="gridscore-control-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    # A model chosen by a previous run is not this run's choice.
    (Path(directory) / "served.json").unlink(missing_ok=True)
    os.environ["CONTROL_DIR"] = directory
    return directory


def check_streams(settings: Settings) -> str | None:
    """If the broker answers now, that its streams can be used as configured (a conflict is
    a configuration error); if it does not, the worker waits for it (readiness 503)."""
    import asyncio

    from app.runtime import tls
    from app.stream import broker

    async def check() -> str | None:
        import nats

        async def reported_below(exc: Exception) -> None:
            pass  # nats-py would log it with a traceback; the line below says it once

        try:
            nc = await nats.connect(
                servers=list(settings.stream.nats_urls),
                connect_timeout=2,
                max_reconnect_attempts=0,
                allow_reconnect=False,
                error_cb=reported_below,
                **tls.broker_options(settings.stream),
            )
        except Exception as exc:
            print(
                f"gridscore: broker at {', '.join(settings.stream.nats_urls)} not reachable "
                f"({type(exc).__name__}); the worker will keep trying",
                file=sys.stderr,
            )
            return None
        try:
            await broker.ensure_streams(nc.jetstream(timeout=5), settings.stream)
        except broker.StreamConflict as exc:
            return str(exc)
        except Exception as exc:  # the broker busy or electing: the worker retries
            print(f"gridscore: checking the streams failed: {exc}", file=sys.stderr)
        finally:
            await nc.close()
        return None

    return asyncio.run(check())


FACTORIES = {
    "serve": "app.service.factory:create_served_app",
    "api": "app.service.factory:create_served_api_app",
    "dashboard": "app.service.factory:create_served_dashboard_app",
    "stream": "app.service.factory:create_served_stream_app",
}


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve`` (API + dashboard), ``api`` or ``dashboard``: check, then run the server."""
    overrides = {"WORKERS": args.workers, "PORT": args.port, "HOST": args.host}
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = str(value)  # workers re-read settings from the environment
    # Workers must sign and check the dashboard's CSRF tokens with the same secret.
    os.environ.setdefault("DASHBOARD_SECRET", secrets.token_hex(32))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return _fail(str(exc))
    from app.runtime import tls  # the standard library's ssl; no server yet
    from app.serving.keys import check_key_files

    security = settings.security
    if setup_problem := (
        tls.check(security) or tls.check_broker(settings.stream) or check_key_files(security)
    ):
        return _fail(setup_problem)
    if args.command == "dashboard":
        if not settings.dashboard.backend_url:
            return _fail("the dashboard alone needs BACKEND_URL, the scorer's base URL")
    else:
        problem = ensure_artifact(settings) or check_envelope(settings)
        if not problem and args.command == "stream":
            problem = check_streams(settings)
        if problem:
            return _fail(problem)
    metrics_dir = prepare_metrics_dir(settings)
    control_dir = prepare_control_dir(settings)
    from app.runtime import server  # uvicorn and the app only once the checks pass

    try:
        return server.serve(Settings.from_env(), FACTORIES[args.command])
    finally:
        if not settings.server.metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if not settings.server.control_dir:
            shutil.rmtree(control_dir, ignore_errors=True)


def cmd_convert(args: argparse.Namespace) -> int:
    return subprocess.run([sys.executable, "-m", "convert", *args.rest], check=False).returncode


def cmd_verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path = args.path or artifact.find(
        settings.model.dir, settings.model.name, settings.model.digest
    )
    if path is None:
        return _fail(f"no artifact in {settings.model.dir}")
    try:
        verified = artifact.load(Path(path))
    except artifact.ArtifactError as exc:
        return _fail(str(exc))
    meta = verified.metadata
    print(f"{verified.path.name}: sha256 verified ({meta.digest})")
    print(f"  features {meta.features}, threshold {meta.threshold:.6f}, graph {meta.graph}")
    print(
        f"  parity: max |score diff| {meta.parity.max_abs_score_diff:.2e} over "
        f"{meta.parity.points} points, {meta.parity.label_mismatches_outside_band} label "
        "mismatches outside the band"
    )
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 when GET http(s)://127.0.0.1:<port><path> answers 200 (container health checks;
    HTTPS when TLS_CERT_FILE is set)."""
    import urllib.error
    import urllib.request

    security = Settings.from_env().security
    context = None
    if security.tls:
        # This process's own listener on loopback: its certificate names the service, not
        # 127.0.0.1, and nothing secret is sent, so it is not verified here. Under mutual TLS
        # for every route the probe presents the dashboard's client pair (BACKEND_CERT_FILE).
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if security.backend_cert_file:
            context.load_cert_chain(security.backend_cert_file, security.backend_key_file)
    url = f"{'https' if context else 'http'}://127.0.0.1:{args.port}{args.path}"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:  # noqa: S310 (http(s) only)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"gridscore probe: {url}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridscore", description="Real-time anomaly scoring for power-grid sensor readings."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    servers = {
        "serve": (
            "serve the API and the dashboard (converting the model first if it is missing and "
            "TRAIN_IF_MISSING=1)",
            "Serve POST /predict, /health, /live, /metrics, /schema and the dashboard at /, "
            "which scores through this same process.",
        ),
        "api": (
            "serve the scoring API alone",
            "Serve POST /predict, /health, /live, /metrics and /schema.",
        ),
        "stream": (
            "score a NATS JetStream stream of readings, with alarms per sensor (NATS_URL)",
            "Consume grid.readings.<site>.<sensor> from the stream STREAM_NAME, publish "
            "verdicts, alarms and dead letters (docs/stream.md); /health, /live and /metrics "
            "on PORT.",
        ),
        "dashboard": (
            "serve the dashboard alone, against the scorer at BACKEND_URL",
            "Serve the dashboard at / (and /live, /health for probes); it needs neither "
            "onnxruntime nor the model.",
        ),
    }
    for name, (summary, description) in servers.items():
        server_parser = sub.add_parser(
            name,
            help=summary,
            description=f"{description} Every setting comes from the environment (see "
            "docs/configuration.md); these flags override a few.",
        )
        server_parser.add_argument(
            "--workers", type=int, help="worker processes (env WORKERS, default 1)"
        )
        server_parser.add_argument("--port", type=int, help="TCP port (env PORT, default 8000)")
        server_parser.add_argument("--host", help="listen address (env HOST, default 127.0.0.1)")
        server_parser.set_defaults(func=cmd_serve)
    convert = sub.add_parser("convert", help="train and publish the model (python -m convert)")
    convert.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m convert")
    convert.set_defaults(func=cmd_convert)
    verify = sub.add_parser("verify", help="check an artifact's sha256 and print its metadata")
    verify.add_argument("path", nargs="?", help="the .onnx file (default: the one serve would use)")
    verify.set_defaults(func=cmd_verify)
    probe = sub.add_parser("probe", help="exit 0 if a local server's /health answers 200")
    probe.add_argument("--port", type=int, default=8000)
    probe.add_argument("--path", default="/health")
    probe.add_argument("--timeout", type=float, default=2.0)
    probe.set_defaults(func=cmd_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
