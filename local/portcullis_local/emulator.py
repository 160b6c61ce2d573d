"""The AWS emulator: moto, in this process, behind a front that sends Lambda invocations to cargo lambda.

Why in-process rather than ``moto_server``: the fidelity patches (see ``patches/``) are monkeypatches
of moto's backends, so they have to live in the interpreter that serves the requests.

Why the front: moto's own Lambda needs Docker, and its Step Functions executor calls every service,
Lambda included, at ``http://localhost:$MOTO_PORT``.  So a single port must answer both: Lambda's
Invoke API goes to ``cargo lambda watch`` and everything else to moto.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .faults import FaultInjector, Faults, death_answer
from .iam_audit import CallLog, IamAudit, attribute_executor_calls
from .inspection import Inspection
from .invoke import DEFAULT_TIMEOUT, LambdaEndpoint, bare_function_name

log = logging.getLogger(__name__)

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")

# Seconds moto keeps a requested certificate in PENDING_VALIDATION (moto's own default is 60).
DEFAULT_ACM_VALIDATION_WAIT = 2

# Request headers of the Invoke API that mean something to cargo lambda.
_FORWARDED_HEADERS = ("Content-Type", "X-Amz-Client-Context", "X-Amz-Invocation-Type", "X-Amz-Log-Type")


def _lambda_error(status: int, error_type: str, message: str) -> Response:
    """An error in the shape botocore parses for the Lambda API (rest-json)."""
    return Response(
        json.dumps({"Type": "User" if status < 500 else "Service", "message": message}),
        status=status,
        content_type="application/json",
        headers={"x-amzn-ErrorType": error_type},
    )


class LambdaFront:
    """WSGI middleware: Lambda's Invoke API to cargo lambda, every other request to ``app``.

    An invocation that an injected ``die-after`` fault killed (faults.py) is answered as dead."""

    def __init__(self, app, lambda_endpoint: LambdaEndpoint, faults: FaultInjector | None = None):
        self.app = app
        self.lambda_endpoint = lambda_endpoint
        self.faults = faults

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        # PATH_INFO is already percent-decoded, so an ARN arrives with its colons.
        match = INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if match and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(match["name"], Request(environ))(environ, start_response)
        return self.app(environ, start_response)

    def _invoke(self, name: str, request: Request) -> Response:
        response = self._forward(name, request)
        # Real Lambda always sends one, and botocore's error handling expects it.
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response

    def _forward(self, name: str, request: Request) -> Response:
        headers = {h: request.headers[h] for h in _FORWARDED_HEADERS if h in request.headers}
        try:
            result = self.lambda_endpoint.invoke(name, request.get_data(), headers)
        except Exception as error:  # noqa: BLE001 - any transport failure is the same answer
            log.warning("invoke %s: cargo lambda unreachable: %s", name, error)
            return _lambda_error(502, "ServiceException", f"Lambda emulator unreachable: {error}")

        if result.status == 404:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if self.faults is not None and self.faults.death_of(bare_function_name(name)):
            return death_answer(name)

        response_headers = {"X-Amz-Executed-Version": "$LATEST"}
        if result.function_error() is not None:
            # cargo lambda reports a handler error as HTTP 500; boto3 would retry that and run the
            # function again.  Real Lambda answers 200 and flags the error, which is what the Step
            # Functions executor needs to see a task failure exactly once.
            response_headers["X-Amz-Function-Error"] = "Unhandled"
            return Response(result.body, status=200, content_type="application/json", headers=response_headers)
        if result.status != 200:
            message = result.body.decode("utf-8", "replace")[:500]
            return _lambda_error(502, "ServiceException", f"Lambda emulator answered {result.status}: {message}")
        return Response(
            result.body,
            status=200,
            content_type=result.headers.get("content-type", "application/json"),
            headers=response_headers,
        )


def configure_moto(port: int, acm_validation_wait: int) -> None:
    """Process-wide moto settings; must run before the first state machine is created.

    - ``MOTO_PORT``: where the Step Functions executor sends its service calls (read per call).
    - ACM validation wait: moto reads ``MOTO_ACM_VALIDATION_WAIT`` once at import, so the module
      attribute is set as well as the variable.
    - Step Functions execution: the in-process equivalent of ``POST /moto-api/config``.  moto keeps
      executing and non-executing state machines in different backends, so machines created before
      this switch would vanish from view.
    """
    os.environ["MOTO_PORT"] = str(port)
    os.environ["MOTO_ACM_VALIDATION_WAIT"] = str(acm_validation_wait)

    import moto.settings
    from moto.moto_api._internal.models import moto_api_backend

    moto.settings.ACM_VALIDATION_WAIT = acm_validation_wait
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


class Emulator:
    """moto plus the Lambda front as a threaded HTTP server on ``host:port`` (0 picks a free port).

    moto's state is process-global: two emulators in one process share every resource.
    """

    def __init__(
        self,
        lambda_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        acm_validation_wait: int = DEFAULT_ACM_VALIDATION_WAIT,
        lambda_timeout: float = DEFAULT_TIMEOUT,
        log_requests: bool = False,
    ):
        self.host = host
        self.requested_port = port
        self.lambda_endpoint = LambdaEndpoint(host, lambda_port, lambda_timeout)
        self.acm_validation_wait = acm_validation_wait
        self.log_requests = log_requests
        # Every AWS action each function (and state machine) performs, for the IAM check (iam_audit.py).
        self.calls = CallLog()
        # Faults armed through /_portcullis/faults (faults.py); none by default.
        self.faults = FaultInjector()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        # Imported here so that merely importing this module (e.g. for LambdaFront in tests) stays cheap.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        from . import patches

        patches.apply_all()
        attribute_executor_calls()
        if not self.log_requests:
            # The Step Functions executor polls and calls back constantly; one line per request
            # would bury everything else.  Errors still get through.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_app = DomainDispatcherApplication(create_backend_app)
        # Faults sit inside the audit (an attempted call is still recorded) and outside moto.
        front = LambdaFront(moto_app, self.lambda_endpoint, self.faults)
        app = IamAudit(Faults(Inspection(front), self.faults), self.calls)
        try:
            self._server = make_server(
                self.host, self.requested_port, app, threaded=True, request_handler=MotoRequestHandler
            )
        except SystemExit:
            # werkzeug prints why (typically "port in use") and exits; let the caller decide instead.
            raise OSError(f"AWS emulator cannot listen on {self.host}:{self.requested_port}") from None
        configure_moto(self.port, self.acm_validation_wait)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()
        log.info("AWS emulator on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
