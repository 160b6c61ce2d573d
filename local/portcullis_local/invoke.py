"""Calls into ``cargo lambda watch``'s Invoke API, shared by the emulator's Lambda front and the gateway.

``cargo lambda watch`` implements only the data plane of Lambda's Invoke API, under bare function
names: ``POST /2015-03-31/functions/{name}/invocations``.  A handler error comes back as HTTP 500 with
a JSON body ``{errorType, errorMessage}`` (real Lambda answers 200 with ``X-Amz-Function-Error``), and
the first call of a function starts it with ``cargo run``, which may take seconds or, when the binary
is stale, as long as a build: hence the long default timeout.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from dataclasses import dataclass
from urllib.parse import quote

# Seconds a caller waits for one invocation.  Generous because a cold start may include a build.
DEFAULT_TIMEOUT = float(os.environ.get("PORTCULLIS_LAMBDA_TIMEOUT_SECONDS", "120"))

# cargo lambda watch (1.9) queues a function's invocations in a channel of 100 and, when it is full,
# waits for room while holding the lock that the function's instances need to take the next one: more
# than 100 invocations of one function in flight deadlock it, and every other function with it
# (cargo-lambda-watch, state.rs `RequestCache::upsert`). Invocations past this many wait here instead,
# as they would for Lambda to scale.
MAX_IN_FLIGHT_PER_FUNCTION = 64
_in_flight: dict[tuple[str, int, str], threading.BoundedSemaphore] = {}
_in_flight_lock = threading.Lock()


def _slots(host: str, port: int, function_name: str) -> threading.BoundedSemaphore:
    """The in-flight slots of one function of one cargo lambda, shared by every caller in the process."""
    with _in_flight_lock:
        key = (host, port, bare_function_name(function_name))
        return _in_flight.setdefault(key, threading.BoundedSemaphore(MAX_IN_FLIGHT_PER_FUNCTION))


@dataclass(frozen=True)
class InvokeResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def function_error(self) -> dict | None:
        """The ``{errorType, errorMessage}`` document when the handler failed, else ``None``.

        Only a 500 whose body has that shape is a handler error; any other failure (cargo lambda's
        own 404 for an unknown function, a crash page) is the emulator's problem, not the function's.
        """
        if self.status != 500:
            return None
        try:
            document = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(document, dict) and "errorType" in document:
            return document
        return None


def bare_function_name(name: str) -> str:
    """Reduce what a caller may pass as ``FunctionName`` to the bare name cargo lambda serves.

    Lambda accepts a name, ``name:qualifier``, a full ARN (``arn:aws:lambda:region:acct:function:
    name[:qualifier]``) or a partial one (``acct:function:name``); cargo lambda only knows names.
    """
    parts = name.split(":")
    if "function" in parts:
        index = parts.index("function")
        if index + 1 < len(parts):
            return parts[index + 1]
    return parts[0]


class LambdaEndpoint:
    """The address of a running ``cargo lambda watch``."""

    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT):
        self.host = host
        self.port = port
        self.timeout = timeout

    def invocation_path(self, function_name: str) -> str:
        return f"/2015-03-31/functions/{quote(bare_function_name(function_name), safe='')}/invocations"

    def invoke(self, function_name: str, payload: bytes, headers: dict[str, str] | None = None) -> InvokeResult:
        """POST one event.

        Raises ``OSError`` or ``http.client.HTTPException`` when cargo lambda cannot be reached or
        hangs up; callers map that to the error their own protocol uses.
        """
        slots = _slots(self.host, self.port, function_name)
        if not slots.acquire(timeout=self.timeout):
            raise TimeoutError(f"{function_name}: {MAX_IN_FLIGHT_PER_FUNCTION} invocations in flight for {self.timeout} s")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            request_headers = {"Content-Type": "application/json"}
            request_headers.update(headers or {})
            connection.request("POST", self.invocation_path(function_name), body=payload, headers=request_headers)
            response = connection.getresponse()
            body = response.read()
            return InvokeResult(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            connection.close()
            slots.release()

    def is_up(self, timeout: float = 1.0) -> bool:
        """True once the server answers HTTP at all (any status): the function processes start lazily.

        Asks with GET on an invocation path, which cargo lambda answers 405 without logging an
        error (``GET /`` would log one).
        """
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", self.invocation_path("readiness-probe"))
            connection.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
