"""Shared fixtures: one in-process emulator per test session, and a stub in place of cargo lambda.

moto's state is process-global, so tests share one emulator and keep to names of their own.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from portcullis_local.bootstrap import client
from portcullis_local.emulator import Emulator


class StubLambda:
    """Answers cargo lambda's Invoke API the way cargo lambda does, per function name:

    - ``echo``: 200 with ``{"function": name, "event": <the event>}``;
    - ``proxy``: 200 with an API Gateway proxy response whose body is the event it got;
    - ``custom``: 200 with whatever response document the test set in ``responses["custom"]``;
    - ``boom``: 500 ``{errorType, errorMessage}`` (a handler error);
    - ``crash``: 500 with a non-JSON body (not a handler error);
    - anything else: 404.
    """

    def __init__(self):
        self.calls: list[tuple[str, dict | str]] = []
        self.responses: dict[str, dict] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                parts = self.path.split("/")  # /2015-03-31/functions/{name}/invocations
                name = parts[3] if len(parts) == 5 and parts[4] == "invocations" else ""
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = raw.decode()
                stub.calls.append((name, event))
                if name == "echo":
                    self._answer(200, {"function": name, "event": event})
                elif name == "proxy":
                    self._answer(200, {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                                       "body": json.dumps(event), "isBase64Encoded": False})
                elif name == "custom":
                    self._answer(200, stub.responses["custom"])
                elif name == "boom":
                    self._answer(500, {"errorType": "Boom", "errorMessage": "it broke"})
                elif name == "crash":
                    self._answer(500, "panic", content_type="text/plain")
                else:
                    self._answer(404, "Function not found", content_type="text/plain")

            def do_GET(self):
                self._answer(404, "nothing here", content_type="text/plain")

            def _answer(self, status, document, content_type="application/json"):
                body = (json.dumps(document) if content_type == "application/json" else document).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def stub_lambda():
    stub = StubLambda()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def emulator(stub_lambda):
    emulator = Emulator(lambda_port=stub_lambda.port).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def aws(emulator):
    """``aws("cognito-idp")`` → a boto3 client talking to the emulator over HTTP.

    Cached per service: creating a client loads its whole service model, which adds up.
    """
    return functools.cache(lambda service: client(service, emulator.url))


@pytest.fixture
def password_pool(aws):
    """``password_pool("prefix")`` → ``(pool_id, client_id)``: a fresh pool that signs in by email, and a
    client allowed ADMIN_USER_PASSWORD_AUTH."""
    return functools.partial(_email_pool_with_password_client, aws("cognito-idp"))


def _email_pool_with_password_client(cognito, prefix: str) -> tuple[str, str]:
    pool_id = cognito.create_user_pool(PoolName=f"{prefix}-{uuid.uuid4().hex[:8]}", UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


@pytest.fixture
def run_to_end(aws):
    """``run_to_end(definition, name)`` → the execution of a new state machine, once no longer RUNNING."""

    def run(definition: dict, name: str) -> dict:
        sfn = aws("stepfunctions")
        arn = sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/test"
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"step": "x"}))["executionArn"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.1)
        raise AssertionError(f"{name} still running")

    return run


@pytest.fixture
def faults(emulator):
    """``faults(action, kind, **options)`` arms a fault; every fault is cleared after the test."""
    url = f"{emulator.url}/_portcullis/faults"

    def arm(action: str, kind: str, **options) -> dict:
        answer = requests.post(url, json={"action": action, "kind": kind, **options}, timeout=5)
        assert answer.status_code == 201, answer.text
        return answer.json()

    arm.url = url
    yield arm
    assert requests.delete(url, timeout=5).status_code == 204
