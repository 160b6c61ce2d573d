"""The launcher end to end (`test-run`, `dev`, `token`) with a fake `cargo` standing in for
`cargo lambda watch`, so that no Rust is needed: ordering, stack.json, the functions' environment,
exit codes, and that nothing is left running afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from portcullis_local.stack import STACK_FILE_KEYS

LOCAL_DIR = Path(__file__).resolve().parents[1]
FAKE_CARGO_DIR = Path(__file__).resolve().parent / "fake_cargo"

OPENAPI = """
paths:
  /echo/{thing}:
    get:
      x-amazon-apigateway-integration: {type: aws_proxy, uri: {"Fn::Sub": "…/functions/${ProxyFunction.Arn}/invocations"}}
"""

# Runs as the command under test-run: checks the stack it is given, then exits with code 3.
INNER = textwrap.dedent(
    """
    import json, os, subprocess, sys, urllib.request
    stack = json.load(open(os.environ["PORTCULLIS_STACK_FILE"]))
    with urllib.request.urlopen(stack["apiUrl"] + "/echo/x1") as response:
        answer = json.load(response)
    token = subprocess.run(
        [sys.executable, "-m", "portcullis_local", "token", "--state-dir", os.path.dirname(os.environ["PORTCULLIS_STACK_FILE"])],
        check=True, capture_output=True, text=True,
    ).stdout
    json.dump({"stack": stack, "answer": answer, "token": token}, open(sys.argv[1], "w"))
    sys.exit(3)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped running
    except FileNotFoundError:
        return False


@pytest.fixture
def sources(tmp_path):
    (tmp_path / "openapi.yaml").write_text(OPENAPI)
    machines = tmp_path / "statemachine"
    machines.mkdir()
    (machines / "provision.asl.json").write_text('{"StartAt":"A","States":{"A":{"Type":"Pass","Result":"${TableName}","End":true}}}')
    (machines / "deprovision.asl.json").write_text('{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}')
    return ["--openapi", str(tmp_path / "openapi.yaml"), "--statemachine-dir", str(machines)]


@pytest.fixture
def launcher_env(tmp_path):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(FAKE_CARGO_DIR), env["PATH"]])
    env["PYTHONPATH"] = str(LOCAL_DIR)
    env["FAKE_CARGO_PIDS"] = str(tmp_path / "pids")
    env["PORTCULLIS_ENV_POLL_SECONDS"] = "7"
    env["PORTCULLIS_STOP_GRACE_SECONDS"] = "1"  # the fake's stuck function costs the grace period
    return env


def _pids(tmp_path) -> list[int]:
    return [int(line) for line in (tmp_path / "pids").read_text().split()]


def test_test_run_gives_the_command_a_stack_and_cleans_up(tmp_path, sources, launcher_env):
    state_dir = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-m", "portcullis_local", "test-run", "--state-dir", str(state_dir), *sources,
         "--iam-calls", str(tmp_path / "iam" / "calls.json"),
         "--", sys.executable, "-c", INNER, str(tmp_path / "seen.json")],
        env=launcher_env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 3, result.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert tuple(seen["stack"]) == STACK_FILE_KEYS
    assert seen["stack"]["apiUrl"].startswith("http://127.0.0.1:")
    assert seen["stack"]["awsEndpoint"].startswith("http://127.0.0.1:")

    body = seen["answer"]  # the proxy response's body, as the gateway returns it
    assert body["function"] == "proxy"
    assert body["event"]["pathParameters"] == {"thing": "x1"}
    function_env = body["env"]
    assert function_env["AWS_ENDPOINT_URL"] == seen["stack"]["awsEndpoint"]
    assert function_env["PORTCULLIS_TOKEN_AUDIENCE"] == seen["stack"]["userPoolClientId"]
    assert function_env["PORTCULLIS_PROVISION_STATE_MACHINE_ARN"].endswith(":stateMachine:portcullis-provision")
    assert function_env["PORTCULLIS_ENV_POLL_SECONDS"] == "7"  # the launcher's environment wins

    assert seen["token"].count(".") == 2 and "\n" == seen["token"][-1]  # only the token on stdout

    assert "last lines of" in result.stderr  # the command failed, so the stack's log is shown
    assert not (state_dir / "stack.json").exists()
    assert len(_pids(tmp_path)) == 3 and not any(_alive(pid) for pid in _pids(tmp_path))

    # The AWS calls are written when the stack stops: here only the bootstrap's, which are no function's.
    calls = json.loads((tmp_path / "iam" / "calls.json").read_text())
    assert calls["calls"] == {} and calls["harness"]["dynamodb:CreateTable"] == 1


def test_dev_stops_everything_on_sigint(tmp_path, sources, launcher_env):
    state_dir = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis_local", "dev", "--free-ports", "--state-dir", str(state_dir), *sources],
        env=launcher_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "stack.json").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "stack did not come up"
            time.sleep(0.1)
        assert tuple(json.loads((state_dir / "stack.json").read_text())) == STACK_FILE_KEYS

        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0
    assert "make token" in stdout
    assert not (state_dir / "stack.json").exists()
    assert len(_pids(tmp_path)) == 3 and not any(_alive(pid) for pid in _pids(tmp_path))
