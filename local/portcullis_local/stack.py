"""The whole local stack: emulator, bootstrap, ``cargo lambda watch`` and the API gateway, started in
order and stopped together.

Order matters: the emulator must run before the bootstrap; the functions' environment (endpoint,
table, state machine ARNs, token issuer) exists only after the bootstrap; the gateway and the
emulator's Lambda front need cargo lambda's port, which is therefore chosen first.

``cargo lambda watch`` runs in a session of its own, so that a Ctrl-C in the terminal reaches only
the launcher, which then stops everything in order instead of racing cargo lambda.  The function
processes cargo lambda spawns (``cargo run`` execs the function binary) get process groups of their
own, so stopping also tracks them by parentage and kills any that outlive cargo lambda.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import constants as c
from .bootstrap import DEFAULT_STATEMACHINE_DIR, bootstrap, register_demo_tenant
from .emulator import DEFAULT_ACM_VALIDATION_WAIT, Emulator
from .gateway import Gateway, GatewayResponses, RouteTable
from .iam_audit import CallLog
from .invoke import LambdaEndpoint
from .run_events import Rule, RunEvents

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# Keys of stack.json: a contract with the black-box tests and `token`.  Keep it exactly this.
STACK_FILE_KEYS = ("apiUrl", "awsEndpoint", "listenerArn", "targetGroupArn", "userPoolId", "userPoolClientId")

# Workflow timing for local runs (the product's defaults suit AWS, where DNS validation takes
# minutes).  Each can be overridden by the same variable in the launcher's environment.
LOCAL_TIMING_DEFAULTS = {
    "PORTCULLIS_CERT_POLL_SECONDS": "1",
    "PORTCULLIS_CERT_DEADLINE_SECONDS": "60",
    "PORTCULLIS_CERT_MAX_WAIT_SECONDS": "2",
    "PORTCULLIS_ENV_POLL_SECONDS": "1",
    "PORTCULLIS_ENV_DEADLINE_SECONDS": "30",
    "PORTCULLIS_ENV_MAX_WAIT_SECONDS": "2",
}

REGISTRY_ROUTE = "/tenants/{tenantId}"
CARGO_LAMBDA_START_TIMEOUT = 60  # seconds for `cargo lambda watch` to answer HTTP (it builds lazily)
# Seconds cargo lambda and its functions get to exit after SIGTERM before they are killed.
STOP_GRACE_SECONDS = float(os.environ.get("PORTCULLIS_STOP_GRACE_SECONDS", "10"))


class StackError(RuntimeError):
    pass


@dataclass
class Ports:
    api: int
    aws: int
    lambda_: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            api=int(os.environ.get("PORTCULLIS_API_PORT", c.DEFAULT_API_PORT)),
            aws=int(os.environ.get("PORTCULLIS_AWS_PORT", c.DEFAULT_AWS_PORT)),
            lambda_=int(os.environ.get("PORTCULLIS_LAMBDA_PORT", c.DEFAULT_LAMBDA_PORT)),
        )

    @classmethod
    def free(cls) -> Ports:
        """Ports 0 for the servers this process binds itself (no race); cargo lambda's is picked now."""
        return cls(api=0, aws=0, lambda_=free_port())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def functions_env(aws_endpoint: str, resources: dict, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``cargo lambda watch`` gives every function."""
    environ = os.environ if environ is None else environ
    pool_id = resources["userPoolId"]
    env = {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_REGION": c.REGION,
        "AWS_ACCESS_KEY_ID": c.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": c.SECRET_ACCESS_KEY,
        "PORTCULLIS_TABLE_NAME": c.TABLE_NAME,
        "PORTCULLIS_PROVISION_STATE_MACHINE_ARN": resources.get("provisionStateMachineArn", ""),
        "PORTCULLIS_DEPROVISION_STATE_MACHINE_ARN": resources.get("deprovisionStateMachineArn", ""),
        "PORTCULLIS_SETTINGS_STATE_MACHINE_ARN": resources.get("settingsStateMachineArn", ""),
        # moto serves each pool's keys under the emulator's own address, not cognito-idp's.
        "PORTCULLIS_JWKS_URL": f"{aws_endpoint}/{pool_id}/.well-known/jwks.json",
        # …but signs tokens with the real-looking issuer, which is what the functions must expect.
        "PORTCULLIS_TOKEN_ISSUER": resources["tokenIssuer"],
        "PORTCULLIS_TOKEN_AUDIENCE": resources["userPoolClientId"],
        # Service tokens: clients of the operators' pool, and the token endpoint the emulator serves for
        # it (patches/cognito_client_credentials.py; on AWS, the pool domain's /oauth2/token).
        "PORTCULLIS_OPERATORS_POOL_ID": pool_id,
        "PORTCULLIS_SERVICE_TOKEN_URL": f"{aws_endpoint}/{pool_id}/oauth2/token",
        # The template parameter AllowedOrigins: the portal's origins, none unless the launcher names some.
        "PORTCULLIS_ALLOWED_ORIGINS": environ.get("PORTCULLIS_ALLOWED_ORIGINS", ""),
        # The template parameter PageTokenKey: seals page tokens; a fresh one per stack unless given.
        "PORTCULLIS_PAGE_TOKEN_KEY": environ.get("PORTCULLIS_PAGE_TOKEN_KEY") or secrets.token_urlsafe(32),
    }
    for name, default in LOCAL_TIMING_DEFAULTS.items():
        env[name] = environ.get(name, default)
    env["RUST_LOG"] = environ.get("RUST_LOG", "info")
    env["RUST_BACKTRACE"] = "1"
    return env


def write_env_file(path: Path, env: dict[str, str]) -> None:
    for name, value in env.items():
        if "\n" in value:
            raise StackError(f"{name}: an env file value cannot span lines")
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()))


class CargoLambda:
    """``cargo lambda watch`` as a child in its own process group."""

    def __init__(self, port: int, env_file: Path, output: IO | None, pid_file: Path):
        self.endpoint = LambdaEndpoint(HOST, port)
        self.env_file = env_file
        self.output = output
        self.pid_file = pid_file
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        concurrency = os.environ.get("PORTCULLIS_LAMBDA_CONCURRENCY", "4")
        return [
            "cargo", "lambda", "watch",
            "--invoke-address", HOST,  # its default is every interface
            "--invoke-port", str(self.endpoint.port),
            "--ignore-changes",  # a restart mid-test would fail requests; restart the stack instead
            "--env-file", str(self.env_file),
            # cargo lambda's default is one instance per function, so parallel tests would queue
            # behind each other.  It starts all N instances of a function on its first invocation.
            "--concurrency", concurrency,
        ]  # fmt: skip

    def start(self) -> None:
        env = dict(os.environ)
        # `cargo lambda` is the cargo-lambda binary that the venv's PyPI package installs.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        for tool in ("cargo", "cargo-lambda"):
            if shutil.which(tool, path=env["PATH"]) is None:
                raise StackError(f"{tool} not found on PATH (is the venv at {Path(sys.executable).parent}?)")
        reap_stale(self.pid_file)
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output is not None else None,
            start_new_session=True,
        )
        self.pid_file.write_text(str(self.process.pid))

    def wait_until_up(self, timeout: float = CARGO_LAMBDA_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise StackError("cargo lambda watch exited during start-up")
            if self.endpoint.is_up():
                return
            time.sleep(0.2)
        raise StackError(f"cargo lambda watch did not answer on port {self.endpoint.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process_group(self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)


def stop_process_group(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop the child, its process group and every process it spawned.

    SIGTERM first: cargo lambda then terminates its function instances itself.  Those run in
    process groups of their own, so signalling cargo lambda's group does not reach them; whatever
    of them outlives the grace period (or a cargo lambda that had to be killed) is killed one by one.
    """
    group = process.pid  # start_new_session made it the group leader
    spawned = _descendants(process.pid)  # before signalling: orphans can no longer be traced to it
    try:
        os.killpg(group, signal.SIGTERM)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        log.warning("cargo lambda watch ignored SIGTERM for %ss; killing it", grace)
    _wait_gone(spawned, grace if process.poll() is not None else 0)
    for pid, started in spawned.items():
        if _start_time(pid) == started:  # still the same process, not a recycled pid
            _kill(pid)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _descendants(root: int) -> dict[int, int]:
    """``{pid: start time}`` of every process below ``root``, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    start_times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent pid
        start_times[pid] = int(fields[19])  # starttime (field 22 of stat)
    found: dict[int, int] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found[pid] = start_times[pid]
        pending.extend(children.get(pid, []))
    return found


def _start_time(pid: int) -> int | None:
    """The process' start time, or None once it is gone (a zombie counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _wait_gone(processes: dict[int, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_start_time(pid) == started for pid, started in processes.items()):
        time.sleep(0.1)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        log.warning("killed process %s left behind by cargo lambda watch", pid)
    except ProcessLookupError:
        pass


def reap_stale(pid_file: Path) -> None:
    """Stop a cargo lambda watch left behind by a launcher that was killed without cleaning up.

    Only if that process group is still led by a ``cargo-lambda … watch`` process, so a recycled
    pid never leads to killing something else.
    """
    try:
        group = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{group}/cmdline").read_bytes().split(b"\0")
        is_ours = (
            any(part.endswith(b"cargo-lambda") for part in cmdline)
            and b"watch" in cmdline
            and os.getpgid(group) == group
        )
        if is_ours:
            log.warning("stopping cargo lambda watch left over from an earlier run (process group %s)", group)
            os.killpg(group, signal.SIGKILL)
    except (OSError, ValueError):
        pass  # no file, no such process, or not ours
    pid_file.unlink(missing_ok=True)


class Stack:
    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        statemachine_dir: Path = DEFAULT_STATEMACHINE_DIR,
        openapi_file: Path = REPO_ROOT / "openapi.yaml",
        cargo_output: IO | None = None,
        template_file: Path = REPO_ROOT / "infra" / "template.yaml",
    ):
        self.state_dir = state_dir.resolve()
        self.ports = ports
        self.statemachine_dir = statemachine_dir
        self.openapi_file = openapi_file
        self.template_file = template_file
        self.cargo_output = cargo_output
        self.emulator: Emulator | None = None
        self.gateway: Gateway | None = None
        self.cargo_lambda: CargoLambda | None = None
        self.run_events: RunEvents | None = None
        self.description: dict[str, str] = {}
        # The emulator's record of every AWS call (iam_audit.py); kept after stop() so it can be written.
        self.calls: CallLog | None = None

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "functions.env"

    def start(self) -> dict[str, str]:
        """Start everything; on any failure, stop what was started and re-raise."""
        try:
            return self._start()
        except OSError as error:  # mostly a port in use
            self.stop()
            raise StackError(str(error)) from error
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, str]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.stack_file.unlink(missing_ok=True)  # never leave a stale file that looks like a live stack
        routes = RouteTable.from_file(self.openapi_file)  # fail on a bad openapi.yaml before starting anything
        # The template parameter AllowedOrigins; locally none unless PORTCULLIS_ALLOWED_ORIGINS names some.
        origins = {"AllowedOrigins": os.environ.get("PORTCULLIS_ALLOWED_ORIGINS", "")}
        gateway_responses = GatewayResponses.from_file(self.openapi_file, origins)

        acm_wait = int(os.environ.get("PORTCULLIS_ACM_VALIDATION_WAIT", DEFAULT_ACM_VALIDATION_WAIT))
        self.emulator = Emulator(lambda_port=self.ports.lambda_, host=HOST, port=self.ports.aws, acm_validation_wait=acm_wait)
        self.calls = self.emulator.calls
        self.emulator.start()

        resources = bootstrap(self.emulator.url, self.statemachine_dir)
        write_env_file(self.env_file, functions_env(self.emulator.url, resources))

        self.cargo_lambda = CargoLambda(self.ports.lambda_, self.env_file, self.cargo_output, self.state_dir / "cargo-lambda.pid")
        self.cargo_lambda.start()

        self.gateway = Gateway(
            routes, LambdaEndpoint(HOST, self.ports.lambda_), host=HOST, port=self.ports.api, responses=gateway_responses
        )
        self.gateway.start()

        self.cargo_lambda.wait_until_up()
        # EventBridge's WorkflowEndedRule, which moto does not run.
        rule = Rule.from_template(self.template_file)
        self.run_events = RunEvents(self.emulator.url, LambdaEndpoint(HOST, self.ports.lambda_), rule).start()
        # The demo tenant is registered through the API, so only where the API has the registry (the
        # launcher's own tests serve a stand-in API without it).
        if routes.serves("PUT", REGISTRY_ROUTE):
            register_demo_tenant(self.gateway.url, self.emulator.url, resources)

        self.description = {
            "apiUrl": self.gateway.url,
            "awsEndpoint": self.emulator.url,
            "listenerArn": resources["listenerArn"],
            "targetGroupArn": resources["targetGroupArn"],
            "userPoolId": resources["userPoolId"],
            "userPoolClientId": resources["userPoolClientId"],
        }
        assert tuple(self.description) == STACK_FILE_KEYS
        # Written whole and then renamed: whoever polls for the file never reads half of it.
        partial = self.stack_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.description, indent=2) + "\n")
        partial.replace(self.stack_file)
        return self.description

    def stop(self) -> None:
        """Stop whatever runs, in reverse order; safe to call more than once."""
        self.stack_file.unlink(missing_ok=True)
        if self.run_events is not None:
            self.run_events.stop()
            self.run_events = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.cargo_lambda is not None:
            self.cargo_lambda.stop()
            self.cargo_lambda = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def load_stack_file(state_dir: Path) -> dict[str, str]:
    path = state_dir / "stack.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StackError(f"{path} not found: is the local stack running (make dev)?") from None
