#!/usr/bin/env python3
"""Run or test whatsapp_crm with an installed Odoo 18.

    python3 scripts/dev.py test   # fresh database, whole suite, closing line "N passed, N failed, N skipped"
    python3 scripts/dev.py run    # the demo: Odoo and the Cloud API emulator (env PORT, EMULATOR_PORT, DB)

Odoo is found through $ODOO_BIN, else `odoo-bin` or `odoo` on $PATH.
"""

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE = "whatsapp_crm"
ODOO_MISSING = (
    "Odoo 18.0 is required but was not found: install it, then put odoo-bin on PATH or set ODOO_BIN=/path/to/odoo-bin."
)
RESULT_RE = re.compile(r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests")
SKIP_RE = re.compile(r" INFO \S+ \S+: skipped \S+ : ")
BAD_LOG_RE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \d+ (ERROR|CRITICAL) ")
# Warnings about the module's definition (install, views, fields), not runtime warnings tests provoke on purpose.
WARNING_RE = re.compile(
    r"^\d{4}-\d\d-\d\d [\d:,]+ \d+ WARNING \S+ "
    r"(odoo\.modules\.\S+|odoo\.addons\.base\.\S+|odoo\.fields|odoo\.models|odoo\.schema): "
)


def fail(message, code=2):
    print(message, file=sys.stderr)
    sys.exit(code)


def find_odoo():
    candidates = [os.environ.get("ODOO_BIN")] if os.environ.get("ODOO_BIN") else ["odoo-bin", "odoo"]
    for candidate in candidates:
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if not path:
            continue
        probe = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and "18.0" in probe.stdout:
            return path
        if probe.returncode == 0:
            fail(f"{path} is not Odoo 18.0 ({probe.stdout.strip()}). {ODOO_MISSING}")
    fail(ODOO_MISSING)


def addons_path(odoo_bin):
    """This repository, plus the source tree's addons folder when Odoo runs from a checkout."""
    paths = [str(REPO)]
    source_addons = Path(odoo_bin).resolve().parent / "addons"
    if (source_addons / "crm").is_dir():
        paths.append(str(source_addons))
    if os.environ.get("ODOO_ADDONS_PATH"):
        paths.append(os.environ["ODOO_ADDONS_PATH"])
    return ",".join(paths)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sources_hash():
    """A hash of the add-on's files, translations left out: it changes when the code does."""
    digest = hashlib.sha256()
    module = REPO / MODULE
    for path in sorted(module.rglob("*")):
        if path.is_file() and "i18n" not in path.relative_to(module).parts and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(module)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def check_postgres():
    if not shutil.which("psql"):
        fail("PostgreSQL client (psql) is required: install PostgreSQL.")
    probe = subprocess.run(["psql", "-d", "postgres", "-Atc", "select 1"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        user = os.environ.get("PGUSER", os.environ.get("USER", "?"))
        fail(f"PostgreSQL is not reachable as {user}: {probe.stderr.strip()}")


def summarize(log_path):
    """Count tests from Odoo's log; return (passed, failed, skipped, problems)."""
    failed = errors = total = skipped = 0
    problems = []
    seen_result = False
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            if match := RESULT_RE.search(line):
                failed, errors, total = (int(group) for group in match.groups())
                seen_result = True
            elif SKIP_RE.search(line):
                skipped += 1
            elif BAD_LOG_RE.match(line) or WARNING_RE.match(line):
                problems.append(line.rstrip())
    if not seen_result:
        problems.append("Odoo printed no test result: the module probably failed to install.")
    elif total == 0:
        problems.append("No test ran.")
    passed = max(total - failed - errors - skipped, 0)
    return passed, failed + errors, skipped, problems


def command_test(args):
    odoo_bin = find_odoo()
    check_postgres()
    database = args.database or f"{MODULE}_test_{os.getpid()}"
    log_path = Path(args.log or REPO / f"{MODULE}-test.log")
    odoo_args = [
        odoo_bin,
        "-d",
        database,
        f"--addons-path={addons_path(odoo_bin)}",
        "-i",
        MODULE,
        "--test-enable",
        f"--test-tags={args.tags}",
        "--stop-after-init",
        f"--http-port={free_port()}",
        "--log-level=info",
        f"--logfile={log_path}",
    ]
    subprocess.run(["dropdb", "--if-exists", database], check=False)
    log_path.unlink(missing_ok=True)  # Odoo appends: the summary must read this run only
    print(f"Installing {MODULE} on a fresh database {database} and running its tests (log: {log_path.name})")
    started = time.monotonic()
    try:
        returncode = subprocess.run(odoo_args, check=False).returncode
    finally:
        if not args.keep:
            subprocess.run(["dropdb", "--if-exists", database], check=False)
    passed, failed, skipped, problems = summarize(log_path)
    for problem in problems[:40]:
        print(problem)
    if len(problems) > 40:
        print(f"... and {len(problems) - 40} more problem lines in {log_path.name}")
    print(f"Odoo exited with {returncode} after {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if (returncode or failed or problems) else 0


def command_run(args):
    import demo  # noqa: PLC0415 (only `run` needs it)

    return demo.run(args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="run the test suite on a fresh database")
    test.add_argument("--database")
    test.add_argument("--tags", default=f"/{MODULE}")
    test.add_argument("--log")
    test.add_argument("--keep", action="store_true", help="keep the database afterwards")
    run = sub.add_parser("run", help="run Odoo with the module and the local Cloud API emulator")
    run.add_argument("--database", default=os.environ.get("DB") or MODULE)
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8069))
    run.add_argument("--emulator-port", type=int, default=int(os.environ.get("EMULATOR_PORT") or 8099))
    args = parser.parse_args()
    return {"test": command_test, "run": command_run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
