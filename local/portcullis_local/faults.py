"""Fault injection: make the next N matching AWS calls fail the way AWS (or the network) fails them.

Off by default: nothing is armed until a test asks, through the local-only control route on the
emulator's port (nothing in the product calls it):

- ``POST /_portcullis/faults`` ``{"action": "elasticloadbalancing:CreateRule", "kind": "throttle",
  "count": 3, "caller": "portcullis-provisioner", "match": "app-1.demo.test"}`` arms one fault
  (``caller`` and ``match`` are optional) and answers it with its id;
- ``GET /_portcullis/faults`` lists the armed faults, each with how many times it ``fired``;
- ``DELETE /_portcullis/faults`` disarms every fault (and forgets pending deaths).

A fault matches a call by the IAM action and caller that :class:`~.iam_audit.IamAudit` derived for it
(this middleware sits inside it, so the attempted call is still recorded for the IAM check), and, with
``match``, by a string the request's path, query or body must contain (a domain, an app id), so that
tests running side by side each fault only their own app's calls. Kinds:

- ``throttle``: the service's own throttling error, in its wire format, HTTP 400 (Lambda: 429);
- ``server-error``: HTTP 500 with the service's internal-error code;
- ``timeout``: the connection is closed without an answer; the call is not performed;
- ``lost-answer``: the call is performed, then the connection is closed: the caller cannot know;
- ``die-after``: the call is performed and answered, then the calling function's invocation dies:
  its later AWS calls are refused (connection closed, nothing performed) until the Lambda front has
  answered that invocation with ``Lambda.Unknown`` (see :meth:`FaultInjector.death_of`), which is
  what Step Functions reports for a sandbox that ended without a result. Only functions that the
  emulator's Lambda front invokes (the provisioner, run by Step Functions) can die this way.

SDKs retry throttling, 5xx and dropped connections by themselves (the Rust SDK: 3 attempts; boto3's
default: 5 with ``standard`` retry mode, 3 in ``legacy``), so ``count`` is "the next N matching
attempts": arm ``count >= 3`` for the Rust SDK to give up, ``count: 1`` to see a retry absorb it.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import NoReturn

from werkzeug.wrappers import Request, Response

from .iam_audit import ENVIRON_ACTIONS, ENVIRON_CALLER, read_body

log = logging.getLogger(__name__)

FAULTS_PATH = "/_portcullis/faults"
KINDS = ("throttle", "server-error", "timeout", "lost-answer", "die-after")
# What Step Functions reports for an invocation whose sandbox died without a result.
DEATH_ERROR = "Lambda.Unknown"
# Callers that are functions carry ``app/portcullis-<function name>``.
FUNCTION_CALLER_PREFIX = "portcullis-"

# The throttling error each service answers with (aws-smithy's retry classifier knows all of them).
_THROTTLING_CODES = {
    "cognito-idp": "TooManyRequestsException",
    "lambda": "TooManyRequestsException",
    "elasticloadbalancing": "Throttling",
    "route53": "Throttling",
}
_SERVER_ERROR_CODES = {
    "cognito-idp": "InternalErrorException",
    "dynamodb": "InternalServerError",
    "lambda": "ServiceException",
    "route53": "InternalError",
}


@dataclass
class Fault:
    """One armed fault: the next ``count`` calls of ``action`` (by ``caller``, containing ``match``)."""

    action: str
    kind: str
    count: int
    caller: str | None = None
    match: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    fired: int = 0

    @classmethod
    def parse(cls, document) -> Fault:
        """A fault from the control route's JSON, or ``ValueError`` saying what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object")
        unknown = set(document) - {"action", "kind", "count", "caller", "match"}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        action, kind, count = document.get("action"), document.get("kind"), document.get("count", 1)
        if not isinstance(action, str) or ":" not in action:
            raise ValueError("action must be an IAM action such as elasticloadbalancing:CreateRule")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        for optional in ("caller", "match"):
            if document.get(optional) is not None and not isinstance(document[optional], str):
                raise ValueError(f"{optional} must be a string")
        if kind == "die-after" and not (document.get("caller") or "").startswith(FUNCTION_CALLER_PREFIX):
            raise ValueError(f"die-after needs the caller, a function: {FUNCTION_CALLER_PREFIX}<function name>")
        return cls(action, kind, count, document.get("caller"), document.get("match"))

    def matches(self, caller: str | None, actions: Iterable[str], request_text: Callable[[], str]) -> bool:
        return (
            self.fired < self.count
            and self.action in actions
            and (self.caller is None or self.caller == caller)
            and (self.match is None or self.match in request_text())
        )


class FaultInjector:
    """The armed faults and the functions whose current invocation is dying. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._dying: set[str] = set()

    def arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        log.info("fault armed: %s", fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._dying.clear()

    def listing(self) -> list[dict]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def take(self, caller: str | None, actions: Iterable[str], request_text: Callable[[], str]) -> Fault | None:
        """The first armed fault matching this call, counted as fired; ``None`` when none matches.
        ``request_text`` is only called when a fault needs it."""
        with self._lock:
            if not self._faults:
                return None
            for fault in self._faults:
                if fault.matches(caller, actions, request_text):
                    fault.fired += 1
                    return fault
        return None

    def is_dying(self, caller: str | None) -> bool:
        with self._lock:
            return _function_of(caller) in self._dying

    def doom(self, caller: str) -> None:
        with self._lock:
            self._dying.add(_function_of(caller))

    def death_of(self, function_name: str) -> bool:
        """True (once) when ``function_name``'s invocation died: the Lambda front answers it as dead.

        cargo lambda may run several invocations of one function side by side; the first to end after
        the fault fired is taken as the one that died, so die-after cases should not overlap.
        """
        with self._lock:
            if function_name in self._dying:
                self._dying.discard(function_name)
                return True
            return False


def _function_of(caller: str | None) -> str | None:
    if caller is None or not caller.startswith(FUNCTION_CALLER_PREFIX):
        return None
    return caller[len(FUNCTION_CALLER_PREFIX) :]


def death_answer(function_name: str) -> Response:
    """The Invoke answer for an invocation that died: 200, flagged as an unhandled function error whose
    type is the one Step Functions reports (moto's executor names the task error after ``errorType``)."""
    body = {
        "errorType": DEATH_ERROR,
        "errorMessage": f"{function_name}: the invocation ended without a result (fault injected: die-after)",
    }
    return Response(
        json.dumps(body),
        status=200,
        content_type="application/json",
        headers={"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"},
    )


def error_answer(kind: str, action: str, environ) -> Response:
    """``throttle`` or ``server-error`` for ``action`` in its service's wire format."""
    service, operation = action.split(":", 1)
    throttle = kind == "throttle"
    if throttle:
        code = _THROTTLING_CODES.get(service, "ThrottlingException" if _is_json(environ) else "Throttling")
        status = 429 if service == "lambda" else 400
        message = "Rate exceeded"
    else:
        code = _SERVER_ERROR_CODES.get(service, "InternalFailure")
        status = 500
        message = "We encountered an internal error. Please try again."
    request_id = str(uuid.uuid4())
    message = f"{message} (fault injected: {kind} on {operation})"
    if _is_json(environ) or service == "lambda":
        return Response(
            json.dumps({"__type": code, "message": message}),
            status=status,
            content_type="application/x-amz-json-1.1",
            headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
        )
    error_type = "Sender" if throttle else "Receiver"
    body = (
        f"<ErrorResponse><Error><Type>{error_type}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(body, status=status, content_type="text/xml", headers={"x-amzn-RequestId": request_id})


def _is_json(environ) -> bool:
    """awsJson protocols (ACM, Cognito, DynamoDB, …) name the operation in ``X-Amz-Target``."""
    return bool(environ.get("HTTP_X_AMZ_TARGET"))


def _drop_connection(environ) -> NoReturn:
    """Close the client's connection without an answer (werkzeug's server hands the socket over)."""
    # Consume the body first: werkzeug would otherwise read it as the connection's next request.
    read_body(environ)
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # werkzeug treats a connection error as the client having gone: nothing more is written.
    raise ConnectionAbortedError("fault injected: connection dropped")


class Faults:
    """WSGI middleware: the control route, and the armed faults applied to the calls they match."""

    def __init__(self, app, injector: FaultInjector | None = None):
        self.app = app
        self.injector = injector if injector is not None else FaultInjector()

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._control(Request(environ))(environ, start_response)
        caller = environ.get(ENVIRON_CALLER)
        actions = environ.get(ENVIRON_ACTIONS)
        if not actions:
            return self.app(environ, start_response)
        if self.injector.is_dying(caller):
            log.info("fault: %s refused, %s's invocation is dying", actions, caller)
            return _drop_connection(environ)
        fault = self.injector.take(caller, actions, functools.partial(_request_text, environ))
        if fault is None:
            return self.app(environ, start_response)
        log.info("fault fired: %s on %s by %s", fault.kind, fault.action, caller)
        if fault.kind in ("throttle", "server-error"):
            return error_answer(fault.kind, fault.action, environ)(environ, start_response)
        if fault.kind == "timeout":
            return _drop_connection(environ)
        if fault.kind == "lost-answer":
            self._perform(environ)
            return _drop_connection(environ)
        # die-after: the call goes through and is answered; the invocation is dead from now on.
        self.injector.doom(caller)
        return self.app(environ, start_response)

    def _perform(self, environ) -> None:
        """Run the call at moto to its end, throwing the answer away."""
        chunks = self.app(environ, lambda status, headers, exc_info=None: None)
        try:
            for _ in chunks:
                pass
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _control(self, request: Request) -> Response:
        if request.method == "GET":
            return _json(200, {"faults": self.injector.listing()})
        if request.method == "DELETE":
            self.injector.clear()
            return Response(status=204)
        if request.method == "POST":
            try:
                fault = Fault.parse(json.loads(request.get_data() or b"null"))
            except ValueError as error:
                return _json(400, {"message": str(error)})
            return _json(201, asdict(self.injector.arm(fault)))
        return _json(405, {"message": "GET, POST or DELETE"})


def _request_text(environ) -> str:
    """Path, query and body, for ``match``; the body is left readable for the application behind."""
    body = read_body(environ).decode("utf-8", "replace")
    return " ".join((environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), body))


def _json(status: int, document) -> Response:
    return Response(json.dumps(document), status=status, content_type="application/json")
