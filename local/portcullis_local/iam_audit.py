"""Recording which AWS actions each function performs, so that ``iam_check`` can hold them against the
function's role in ``infra/template.yaml``.

Every request to the emulator passes through :class:`IamAudit`, which names

- **the caller**: the SDK app name in the user agent (``app/portcullis-apps-api``). Each function sets
  its own (``load_aws_config`` in ``crates/portcullis/src/adapters/mod.rs``); the Step Functions
  executor is given the state machine's (:func:`attribute_executor_calls`). A signed request without an
  app name comes from the local tooling (bootstrap, tests) and is counted apart, never checked.
- **the IAM action** (``dynamodb:PutItem``): the service is the SigV4 credential scope's signing name,
  the operation comes from ``X-Amz-Target`` (JSON protocols), the ``Action`` parameter (query
  protocols) or the method and path (REST protocols: Lambda's Invoke, Route 53). A DynamoDB
  transaction has no IAM action of its own: it is authorized, and recorded, as one action per item
  (``Put`` → ``PutItem``, ``ConditionCheck`` → ``ConditionCheckItem``, …). A REST call that the
  tables below cannot name is recorded as ``service:? METHOD /path``, which no policy allows, so the
  check fails until the table learns it.

Unsigned requests (Cognito's JWKS, the inspection path, the harness's sign-in) need no IAM and are only
counted. Resources are not recorded: the check is action-level (see docs/local-stack.md).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

# Where the audit leaves a signed request's caller and IAM actions for the middlewares inside it.
ENVIRON_CALLER = "portcullis.caller"
ENVIRON_ACTIONS = "portcullis.actions"

# The SigV4 signing name is the IAM prefix for every service Portcullis calls; the exceptions known to
# differ are mapped here.
SIGNING_NAME_TO_IAM_PREFIX = {"monitoring": "cloudwatch"}

# REST operations by (method, path): the path as the emulator sees it (percent-decoded).
REST_ACTIONS: dict[str, tuple[tuple[str, re.Pattern, str], ...]] = {
    "lambda": (("POST", re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$"), "InvokeFunction"),),
    "route53": (
        ("POST", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ChangeResourceRecordSets"),
        ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ListResourceRecordSets"),
        ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+/?$"), "GetHostedZone"),
        ("GET", re.compile(r"^/2013-04-01/hostedzone/?$"), "ListHostedZones"),
        ("GET", re.compile(r"^/2013-04-01/hostedzonesbyname/?$"), "ListHostedZonesByName"),
        ("GET", re.compile(r"^/2013-04-01/change/[^/]+/?$"), "GetChange"),
    ),
}

# DynamoDB operations IAM authorizes item by item, and the action each item is authorized as.
DYNAMODB_ITEM_ACTIONS = {
    "TransactWriteItems": {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
    },
    "TransactGetItems": {"Get": "GetItem"},
}

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_APP_NAME = re.compile(r"(?:^|\s)app/(\S+)")


def signing_service(authorization: str) -> str | None:
    """The signing name in a SigV4 ``Authorization`` header's credential scope, if it has one."""
    match = _CREDENTIAL.search(authorization or "")
    return match[1] if match else None


def app_name(*user_agents: str | None) -> str | None:
    """The ``app/<name>`` of the first user agent that carries one."""
    for user_agent in user_agents:
        match = _APP_NAME.search(user_agent or "")
        if match:
            return match[1]
    return None


def iam_actions(
    service: str, method: str, path: str, target: str | None, params: dict[str, str], body: bytes | None
) -> list[str]:
    """The IAM action(s) one request is authorized as. ``params`` holds the query string and, for a
    form-encoded request, the form; ``body`` is only needed for DynamoDB transactions."""
    prefix = SIGNING_NAME_TO_IAM_PREFIX.get(service, service)
    if target:
        operation = target.rsplit(".", 1)[-1]
        per_item = DYNAMODB_ITEM_ACTIONS.get(operation) if prefix == "dynamodb" else None
        if per_item is not None:
            return [f"dynamodb:{action}" for action in _transaction_actions(body, per_item)]
        return [f"{prefix}:{operation}"]
    if params.get("Action"):
        return [f"{prefix}:{params['Action']}"]
    for rest_method, pattern, action in REST_ACTIONS.get(service, ()):
        if method == rest_method and pattern.match(path):
            return [f"{prefix}:{action}"]
    return [f"{prefix}:? {method} {path}"]


def _transaction_actions(body: bytes | None, per_item: dict[str, str]) -> list[str]:
    try:
        items = json.loads(body or b"{}").get("TransactItems", [])
    except (ValueError, AttributeError):
        items = []
    actions = sorted({per_item.get(kind, f"? {kind}") for item in items for kind in item})
    return actions or ["? empty transaction"]


def read_body(environ) -> bytes:
    """The request body, leaving an equivalent ``wsgi.input`` for the application behind."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


class CallLog:
    """Thread-safe counts of ``(caller, action)``; harness (signed, no app name) and unsigned apart."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._harness: Counter[str] = Counter()
        self._unsigned = 0

    def record(self, caller: str | None, actions: Iterable[str]) -> None:
        with self._lock:
            for action in actions:
                if caller is None:
                    self._harness[action] += 1
                else:
                    self._calls[(caller, action)] += 1

    def record_unsigned(self) -> None:
        with self._lock:
            self._unsigned += 1

    def snapshot(self) -> dict:
        """``{"calls": {caller: {action: count}}, "harness": {action: count}, "unsigned": n}``."""
        with self._lock:
            calls: dict[str, dict[str, int]] = {}
            for (caller, action), count in sorted(self._calls.items()):
                calls.setdefault(caller, {})[action] = count
            return {"calls": calls, "harness": dict(sorted(self._harness.items())), "unsigned": self._unsigned}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.snapshot(), indent=2) + "\n")
        partial.replace(path)


class IamAudit:
    """WSGI middleware: records the caller and IAM action(s) of every request, then passes it on."""

    def __init__(self, app, calls: CallLog | None = None):
        self.app = app
        self.calls = calls if calls is not None else CallLog()

    def __call__(self, environ, start_response):
        try:
            self._record(environ)
        except Exception:  # noqa: BLE001 - the audit must never break a request
            log.exception("iam audit: cannot classify %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        return self.app(environ, start_response)

    def _record(self, environ) -> None:
        service = signing_service(environ.get("HTTP_AUTHORIZATION", ""))
        if service is None:
            self.calls.record_unsigned()
            return
        target = environ.get("HTTP_X_AMZ_TARGET")
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = None
        if target is None and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = read_body(environ)
            params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        elif target is not None and target.rsplit(".", 1)[-1] in DYNAMODB_ITEM_ACTIONS:
            body = read_body(environ)
        actions = iam_actions(
            service, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), target, params, body
        )
        caller = app_name(environ.get("HTTP_X_AMZ_USER_AGENT"), environ.get("HTTP_USER_AGENT"))
        self.calls.record(caller, actions)
        # For the middlewares inside (fault injection matches calls by these).
        environ[ENVIRON_CALLER] = caller
        environ[ENVIRON_ACTIONS] = actions


# --- the Step Functions executor -----------------------------------------------------------------

# moto's executor makes every service call through ``boto_client_for(region, service, state_credentials)``,
# imported by name into these modules; ``state_credentials.role_arn`` is the execution's role.
_EXECUTOR_MODULES = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
)
EXECUTOR_WITHOUT_ROLE = "stepfunctions-executor"
_attribute_lock = threading.Lock()


def executor_app_name(role_arn: str | None) -> str:
    """The app name the executor's calls carry: the role's name. The bootstrap gives each state
    machine a role named after it (``constants.state_machine_role_arn``), as SAM gives each its own."""
    if not role_arn or "/" not in role_arn:
        return EXECUTOR_WITHOUT_ROLE
    return role_arn.rsplit("/", 1)[1]


def attribute_executor_calls() -> None:
    """Make the executor's service calls carry ``app/<role name>`` in their user agent.

    The user agent is not part of the SigV4 signature, so it is appended just before sending.
    Idempotent; fails loudly if moto moved ``boto_client_for``.
    """
    import importlib

    with _attribute_lock:
        base = importlib.import_module(_EXECUTOR_MODULES[0])
        original = getattr(base.boto_client_for, "__wrapped__", base.boto_client_for)

        def boto_client_for(region, service, state_credentials=None):
            client = original(region, service, state_credentials)
            name = executor_app_name(getattr(state_credentials, "role_arn", None))

            def add_app_name(request, **_):
                request.headers["User-Agent"] = f"{request.headers.get('User-Agent', '')} app/{name}".strip()

            client.meta.events.register("before-send", add_app_name)
            return client

        boto_client_for.__wrapped__ = original
        for module_name in _EXECUTOR_MODULES:
            module = importlib.import_module(module_name)
            current = getattr(module, "boto_client_for", None)
            if getattr(current, "__wrapped__", current) is not original:
                raise RuntimeError(f"{module_name}.boto_client_for is not moto's: cannot attribute executor calls")
            module.boto_client_for = boto_client_for
