"""Command line of the local stack.

    PYTHONPATH=local .local/venv/bin/python -m portcullis_local dev [--free-ports] [--state-dir DIR]
    PYTHONPATH=local .local/venv/bin/python -m portcullis_local test-run [--state-dir DIR] -- CMD [ARG…]
    PYTHONPATH=local .local/venv/bin/python -m portcullis_local token [--user EMAIL] [--state-dir DIR]
    PYTHONPATH=local .local/venv/bin/python -m portcullis_local iam-check [--calls FILE] [--template FILE] [--strict]

Ports: PORTCULLIS_API_PORT (4000), PORTCULLIS_AWS_PORT (4566), PORTCULLIS_LAMBDA_PORT (9000).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

from . import constants as c
from .bootstrap import DEFAULT_STATEMACHINE_DIR
from .stack import REPO_ROOT, Ports, Stack, StackError, load_stack_file

LOG_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


class _Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM, so that clean-up runs on the way out."""

    def __init__(self, signum: int):
        self.signum = signum


def _raise_stop(signum, _frame):
    raise _Stop(signum)


def _state_dir(value: str | None, default: str) -> Path:
    # An explicit directory is relative to where the command runs; the default lives in the repo.
    return Path(value).resolve() if value else REPO_ROOT / default


def _print_summary(description: dict[str, str], state_dir: Path) -> None:
    width = max(map(len, description))
    lines = ["", "Portcullis local stack is up:"]
    lines += [f"  {key.ljust(width)}  {value}" for key, value in description.items()]
    lines += [
        "",
        f"  operators: {c.ADMIN_USER} (admin), {c.VIEWER_USER} (viewer), tenant {c.DEMO_TENANT}; "
        f"{c.PLATFORM_USER} (platform); password {c.LOCAL_PASSWORD}",
        f"  tenant:    {c.DEMO_TENANT}, allowed *.demo.test, granted the demo ALB target as {c.DEMO_TARGET_ID}",
        f"  state:     {state_dir}/stack.json, functions.env",
        "",
        "  Bearer token: make token [USER=viewer@demo.test]",
        "  Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_dev(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    state_dir = _state_dir(args.state_dir, ".local")
    ports = Ports.free() if args.free_ports else Ports.from_env()
    stack = Stack(state_dir, ports, statemachine_dir=args.statemachine_dir, openapi_file=args.openapi)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        description = stack.start()
        _print_summary(description, stack.state_dir)
        threading.Event().wait()  # until a signal
    except _Stop:
        print("\nstopping…", file=sys.stderr, flush=True)
    finally:
        # No second Ctrl-C half-way through the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    return 0


def _tail(path: Path, lines: int = 80) -> str:
    try:
        with open(path, errors="replace") as stream:
            return "".join(deque(stream, maxlen=lines))
    except OSError:
        return ""


def cmd_test_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("test-run: give the command to run after --", file=sys.stderr)
        return 2
    state_dir = _state_dir(args.state_dir, ".local/test")
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "stack.log"
    args.iam_calls.unlink(missing_ok=True)  # never let a check read an earlier run's calls

    # The stack's own logs and cargo lambda's output go to the log file, so the command's output
    # stays readable; the file is shown when the command fails.
    log_file = open(log_path, "w", buffering=1)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=log_file)
    stack = Stack(
        state_dir, Ports.free(), statemachine_dir=args.statemachine_dir, openapi_file=args.openapi, cargo_output=log_file
    )
    process: subprocess.Popen | None = None

    def on_signal(signum, _frame):
        # Ctrl-C reaches the command directly (same process group); SIGTERM sent to the launcher
        # alone is passed on.  Either way the command's exit ends the run and clean-up follows.
        if process is not None and signum == signal.SIGTERM:
            process.terminate()
        elif process is None:
            raise _Stop(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        stack.start()
        print(f"local stack up ({stack.description['apiUrl']}); logs in {log_path}", file=sys.stderr, flush=True)
        env = dict(os.environ, PORTCULLIS_STACK_FILE=str(stack.stack_file))
        process = subprocess.Popen(command, env=env)
        code = process.wait()
        code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
    except _Stop as stop:
        code = 128 + stop.signum
    except StackError as error:
        print(f"test-run: {error}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        if stack.calls is not None:
            stack.calls.write(args.iam_calls)
            print(f"AWS calls of the functions recorded in {args.iam_calls} (check: iam-check)", file=sys.stderr)
        log_file.flush()
        if code != 0:
            print(f"\n--- last lines of {log_path} ---\n{_tail(log_path)}", file=sys.stderr)
        log_file.close()
    return code


def cmd_token(args: argparse.Namespace) -> int:
    from .bootstrap import id_token

    stack = load_stack_file(_state_dir(args.state_dir, ".local"))
    print(id_token(stack["awsEndpoint"], stack["userPoolId"], stack["userPoolClientId"], args.user, args.password))
    return 0


def cmd_fuzz(args: argparse.Namespace) -> int:
    """Schemathesis against the running stack (test-run's): every phase (coverage, fuzzing, stateful) and
    every check, twice: every operation of openapi.yaml as the demo tenant's admin, then the tenant
    registry (/tenants…) as the platform operator. Tokens reach local/schemathesis.toml through the
    environment, not the command line."""
    from .bootstrap import id_token

    stack_file = os.environ.get("PORTCULLIS_STACK_FILE")
    stack = json.loads(Path(stack_file).read_text()) if stack_file else load_stack_file(_state_dir(None, ".local"))
    if not args.schemathesis.exists():
        print(f"fuzz: {args.schemathesis} not found (make test installs it)", file=sys.stderr)
        return 2

    def token(user: str) -> str:
        return id_token(stack["awsEndpoint"], stack["userPoolId"], stack["userPoolClientId"], user, c.LOCAL_PASSWORD)

    admin, platform = token(c.ADMIN_USER), token(c.PLATFORM_USER)
    app_id, username = _fuzz_app(stack, admin)
    _api_call(stack, platform, "PUT", f"/tenants/{FUZZ_TENANT}", {"allowedDomains": ["*.fuzz.test"], "targets": []})
    env = dict(
        os.environ,
        PORTCULLIS_FUZZ_APP_ID=app_id,
        PORTCULLIS_FUZZ_USERNAME=username,
        PORTCULLIS_FUZZ_TENANT_ID=FUZZ_TENANT,
    )

    def run(caller: str, token: str, *only: str) -> int:
        print(f"fuzz: as {caller}", file=sys.stderr, flush=True)
        command = [
            str(args.schemathesis), "--config-file", str(REPO_ROOT / "local/schemathesis.toml"), "run",
            str(args.openapi), *only,
            "--url", stack["apiUrl"],
            "--phases", "examples,coverage,fuzzing,stateful",
            "--checks", "all",
            # An app deleted is DELETED, and still readable; a create replayed under a reused Idempotency-Key
            # may name what was removed since (local/schemathesis.toml).
            "--exclude-checks", "use_after_free,ensure_resource_availability",
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--request-timeout", "60",
            "--report", "ndjson", "--report-dir", str(REPO_ROOT / "target/schemathesis" / caller),
        ]  # fmt: skip
        return subprocess.call(command, env=dict(env, PORTCULLIS_FUZZ_TOKEN=token), cwd=REPO_ROOT)

    admin_run = run("admin", admin)
    platform_run = run("platform", platform, "--include-path-regex", "^/tenants(/|$)")
    return admin_run or platform_run


# A tenant the platform operator's contract run registers, replaces, reads and deletes (no apps, no grants).
FUZZ_TENANT = "fuzz-registry"


def _api_call(stack: dict, token: str, method: str, path: str, body: dict | None = None) -> dict:
    import urllib.request

    request = urllib.request.Request(
        stack["apiUrl"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)


def _fuzz_app(stack: dict, token: str, deadline_seconds: float = 90) -> tuple[str, str]:
    """An ACTIVE app of the demo tenant on the demo ALB, with one invited user, for the operations on
    /apps/{id}… to reach their logic rather than 404: its id and the user's name."""
    import time
    import uuid

    def call(method: str, path: str, body: dict | None = None) -> dict:
        return _api_call(stack, token, method, path, body)

    target = {"type": "alb", "listenerArn": stack["listenerArn"], "targetGroupArn": stack["targetGroupArn"]}
    domain = f"fuzz-{uuid.uuid4().hex[:8]}.demo.test"
    app = call("POST", "/apps", {"name": "Fuzz", "domain": domain, "target": target})
    deadline = time.monotonic() + deadline_seconds
    while app["status"] != "ACTIVE":
        if app["status"] == "FAILED" or time.monotonic() > deadline:
            raise StackError(f"fuzz: the app for the contract run did not become ACTIVE: {app}")
        time.sleep(1)
        app = call("GET", f"/apps/{app['id']}")
    user = call("POST", f"/apps/{app['id']}/users", {"email": "fuzz@demo.test", "name": "Fuzz"})
    return app["id"], user["username"]


def cmd_iam_check(args: argparse.Namespace) -> int:
    from . import iam_check

    if not args.calls.exists():
        print(f"iam-check: {args.calls} not found: it is written by test-run when the stack stops", file=sys.stderr)
        return 2
    return iam_check.run(args.calls, args.template, strict=args.strict)


def _add_source_options(command: argparse.ArgumentParser) -> None:
    # Defaults are the repository's own files; other values serve the launcher's own tests.
    command.add_argument("--openapi", type=Path, default=REPO_ROOT / "openapi.yaml", help="default: openapi.yaml")
    command.add_argument(
        "--statemachine-dir", type=Path, default=DEFAULT_STATEMACHINE_DIR, help="default: statemachine/"
    )


def cmd_run_schedule(args: argparse.Namespace) -> int:
    """Runs a schedule's job once, as the template's rule would (there is no clock locally)."""
    from .schedules import Schedule, ScheduleError, run_schedule

    stack_file = os.environ.get("PORTCULLIS_STACK_FILE")
    stack = json.loads(Path(stack_file).read_text()) if stack_file else load_stack_file(_state_dir(args.state_dir, ".local"))
    try:
        print(json.dumps(run_schedule(stack["awsEndpoint"], Schedule.from_template(args.template, args.schedule))))
    except ScheduleError as error:
        print(f"run-schedule: {error}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="portcullis_local", description="Portcullis' local AWS stack.")
    commands = root.add_subparsers(dest="name", required=True)

    dev = commands.add_parser("dev", help="run the stack until Ctrl-C")
    dev.add_argument("--free-ports", action="store_true", help="pick free ports instead of 4000/4566/9000")
    dev.add_argument("--state-dir", help="where stack.json, functions.env go (default: .local)")
    _add_source_options(dev)
    dev.set_defaults(run=cmd_dev)

    test_run = commands.add_parser("test-run", help="run CMD against a fresh stack on free ports")
    test_run.add_argument("--state-dir", help="default: .local/test")
    _add_source_options(test_run)
    test_run.add_argument(
        "--iam-calls",
        type=Path,
        default=REPO_ROOT / "target/iam/calls.json",
        help="where the AWS actions each function performed are written (default: target/iam/calls.json)",
    )
    test_run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG…]")
    test_run.set_defaults(run=cmd_test_run)

    iam = commands.add_parser(
        "iam-check", help="check the AWS calls test-run recorded against each function's role in the template"
    )
    iam.add_argument("--calls", type=Path, default=REPO_ROOT / "target/iam/calls.json")
    iam.add_argument("--template", type=Path, default=REPO_ROOT / "infra/template.yaml")
    iam.add_argument("--strict", action="store_true", help="also fail on granted actions that no test exercised")
    iam.set_defaults(run=cmd_iam_check)

    fuzz = commands.add_parser("fuzz", help="schemathesis against the running stack (run it under test-run)")
    fuzz.add_argument("--openapi", type=Path, default=REPO_ROOT / "openapi.yaml")
    fuzz.add_argument("--schemathesis", type=Path, default=REPO_ROOT / ".local/schemathesis/bin/st")
    fuzz.add_argument("--max-examples", type=int, default=20, help="per operation and phase (default: 20)")
    fuzz.add_argument("--seed", type=int, default=9, help="the same requests every run (default: 9)")
    fuzz.set_defaults(run=cmd_fuzz)

    from .schedules import ACCESS_EXPIRY, DRIFT_CHECK, INVITATION_REMINDER

    schedule = commands.add_parser("run-schedule", help="run one of the template's scheduled jobs once")
    schedule.add_argument("schedule", choices=[DRIFT_CHECK, INVITATION_REMINDER, ACCESS_EXPIRY], help="the rule's logical id")
    drift = commands.add_parser("check-drift", help="run the scheduled drift check of the ACTIVE apps once")
    drift.set_defaults(schedule=DRIFT_CHECK)
    for command in (schedule, drift):
        command.add_argument("--template", type=Path, default=REPO_ROOT / "infra/template.yaml")
        command.add_argument("--state-dir", help="default: .local (or $PORTCULLIS_STACK_FILE under test-run)")
        command.set_defaults(run=cmd_run_schedule)

    token = commands.add_parser("token", help="print an operator's ID token")
    token.add_argument("--user", default=c.ADMIN_USER)
    token.add_argument("--password", default=c.LOCAL_PASSWORD)
    token.add_argument("--state-dir", help="default: .local")
    token.set_defaults(run=cmd_token)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except StackError as error:
        print(f"portcullis_local: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
