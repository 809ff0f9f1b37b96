"""make audit: every lock file's packages against the known vulnerabilities (pip-audit).

    python ops/audit.py [--allow ops/audit-allow.json] [--report FILE]

Each lock (requirements.lock, ops/requirements-tools.lock, the images' ops/locks/*.lock) goes
through ``pip-audit --disable-pip --no-deps -r LOCK`` (the pinned versions as written, nothing
installed). A vulnerability fails the audit unless the allow-list names it with a reason and an
expiry date that has not passed; an entry past its date counts as no entry, so an accepted risk
is looked at again.

Exit status: 0 nothing known, 1 a vulnerability not allowed, 2 a bad allow-list or lock, 3 the
vulnerability service could not be reached or gave no answer for some packages (an index that
answers for projects but not for each release's advisories: pip-audit then skips them as "not
found"): said plainly with what was not checked, never reported as a pass. ``--report FILE``
judges a report pip-audit wrote before (its JSON format) instead of asking the service: how
the allow-list is tested without the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [
    "requirements.lock",
    "ops/requirements-tools.lock",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ops" / "locks").glob("*.lock")),
]
EXIT_VULNERABLE, EXIT_CONFIG, EXIT_UNREACHABLE = 1, 2, 3
# What requests and pip-audit print when no answer came back from the service.
UNREACHABLE = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to resolve",
    "ProxyError",
    "Connection refused",
    "timed out",
    "ServiceError",
)


class AllowListError(ValueError):
    pass


@dataclass(frozen=True)
class Allowed:
    id: str
    package: str
    reason: str
    expires: dt.date


def load_allow_list(path: Path) -> list[Allowed]:
    try:
        entries = json.loads(path.read_text()) if path.exists() else []
    except json.JSONDecodeError as exc:
        raise AllowListError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(entries, list):
        raise AllowListError(f"{path}: a list of entries is expected")
    allowed = []
    for number, entry in enumerate(entries, 1):
        missing = {"id", "package", "reason", "expires"} - set(
            entry if isinstance(entry, dict) else ()
        )
        if missing:
            raise AllowListError(f"{path}: entry {number} lacks {', '.join(sorted(missing))}")
        if not str(entry["reason"]).strip():
            raise AllowListError(f"{path}: entry {number} ({entry['id']}) gives no reason")
        try:
            expires = dt.date.fromisoformat(str(entry["expires"]))
        except ValueError:
            raise AllowListError(
                f"{path}: entry {number} ({entry['id']}): expires must be a date, YYYY-MM-DD"
            ) from None
        allowed.append(
            Allowed(str(entry["id"]), str(entry["package"]).lower(), entry["reason"], expires)
        )
    return allowed


def judge(
    reports: dict[str, dict[str, Any]], allowed: list[Allowed], today: dt.date
) -> tuple[int, list[str]]:
    """The exit status and the lines to print for pip-audit's reports, lock by lock."""
    lines: list[str] = []
    failing = 0
    skipped: list[str] = []
    for lock, report in reports.items():
        for dependency in report.get("dependencies", []):
            name = str(dependency.get("name", "")).lower()
            if "skip_reason" in dependency:
                # pip-audit could not look the release up (an index that answers for projects
                # but not for each release's advisories says "not found"): not checked.
                skipped.append(f"{lock}: {name}")
                continue
            for vuln in dependency.get("vulns", []):
                ids = {vuln["id"], *vuln.get("aliases", [])}
                entry = next((a for a in allowed if a.id in ids and a.package == name), None)
                where = f"{lock}: {name} {dependency.get('version')} {vuln['id']}"
                fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
                if entry is not None and entry.expires >= today:
                    lines.append(f"allowed  {where} until {entry.expires}: {entry.reason}")
                elif entry is not None:
                    failing += 1
                    lines.append(
                        f"EXPIRED  {where}: allowed until {entry.expires}, look again (fixed in "
                        f"{fixed})"
                    )
                else:
                    failing += 1
                    lines.append(f"VULNERABLE  {where} (fixed in {fixed})")
    if failing:
        lines.append(f"{failing} known vulnerabilit{'y' if failing == 1 else 'ies'} not allowed")
        return EXIT_VULNERABLE, lines
    if skipped:
        checked = sum(len(r.get("dependencies", [])) for r in reports.values()) - len(skipped)
        lines.append(
            f"NOT CHECKED  {len(skipped)} packages: the vulnerability service gave no answer for "
            f"their releases (first: {skipped[0]}); {checked} checked. The audit is incomplete, "
            "not passed"
        )
        return EXIT_UNREACHABLE, lines
    lines.append("no known vulnerability outside the allow-list")
    return 0, lines


def audit(lock: str) -> dict[str, Any] | str:
    """pip-audit's report for one lock, or why the service gave none."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--disable-pip",
        "--no-deps",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "-r",
        str(ROOT / lock),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.stdout.strip().startswith("{"):
        return dict(json.loads(done.stdout))
    output = done.stderr + done.stdout
    if any(marker in output for marker in UNREACHABLE):
        return "unreachable"
    return output.strip().splitlines()[-1] if output.strip() else f"exit {done.returncode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python ops/audit.py", description=__doc__)
    parser.add_argument("--allow", type=Path, default=ROOT / "ops" / "audit-allow.json")
    parser.add_argument("--report", type=Path, help="judge this pip-audit JSON report instead")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args(argv)
    try:
        allowed = load_allow_list(args.allow)
    except AllowListError as exc:
        print(f"make audit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    reports: dict[str, dict[str, Any]] = {}
    if args.report is not None:
        try:
            reports[str(args.report)] = json.loads(args.report.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(
                f"make audit: {args.report}: not a pip-audit JSON report ({exc})", file=sys.stderr
            )
            return EXIT_CONFIG
    else:
        for lock in LOCKS:
            result = audit(lock)
            if result == "unreachable":
                print(
                    "make audit: the vulnerability service could not be reached from this "
                    f"machine (while auditing {lock}); nothing was checked. Run it where the "
                    "service answers (a CI runner with network access)",
                    file=sys.stderr,
                )
                return EXIT_UNREACHABLE
            if isinstance(result, str):
                print(f"make audit: pip-audit failed on {lock}: {result}", file=sys.stderr)
                return EXIT_CONFIG
            reports[lock] = result
    status, lines = judge(reports, allowed, args.today)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
