"""An API Gateway (REST API, Lambda proxy integration) stand-in that routes as ``openapi.yaml`` says.

Routes come from the operations that carry an ``x-amazon-apigateway-integration`` of type
``aws_proxy``.  The function behind an operation is read from the integration ``uri``:

- **Convention**: in the SAM template the uri is ``Fn::Sub`` of
  ``arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AppsApiFunction.Arn}/invocations``;
  the local function name is the logical id without its ``Function`` suffix, in kebab-case
  (``AppsApiFunction`` → ``apps-api``, ``UsersApiFunction`` → ``users-api``), which is the Cargo
  binary name that ``cargo lambda watch`` serves.  A literal function ARN in the uri also works.

Each request becomes an API Gateway proxy event (payload format 1.0, stage ``local``) sent to the
function through cargo lambda's Invoke API, and the function's proxy response becomes the HTTP
response.  Gateway-level errors follow API Gateway where it matters to callers: a failed function is
a 502, a timed-out one a 504, and an unknown path API Gateway's MISSING_AUTHENTICATION_TOKEN answer,
each worded by the contract's ``x-amazon-apigateway-gateway-responses`` (``GatewayResponses``), as on
AWS.  An unknown method (any token, TRACE and CONNECT included) answers ``405 application/problem+json``
with ``Allow`` (API Gateway treats it as an unknown path), so that tests can tell a routing mistake
from an auth failure; a request that does not parse is a problem+json 400 too.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from . import constants as c
from .invoke import LambdaEndpoint

log = logging.getLogger(__name__)

STAGE = "local"
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH")
ANY_METHOD = "x-amazon-apigateway-any-method"

_FUNCTION_ARN_REF = re.compile(r"\$\{([A-Za-z0-9]+?)Function\.Arn\}")
_LITERAL_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[^:]+:\d+:function:([A-Za-z0-9_-]+)")

# Headers that describe one hop, not the message: never copied from a Lambda response.
_HOP_BY_HOP = {"connection", "content-length", "keep-alive", "transfer-encoding"}


class OpenApiError(ValueError):
    pass


# --- reading openapi.yaml ----------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """Safe YAML plus CloudFormation short forms (``!Sub x`` reads as ``{"Fn::Sub": x}``)."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def kebab_case(identifier: str) -> str:
    """``AppsApi`` → ``apps-api``; ``HTTPProxy`` → ``http-proxy``."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", identifier)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", spaced).lower()


def function_name_from_uri(uri) -> str | None:
    """The local function name an integration uri points at (see the module docstring)."""
    if isinstance(uri, dict):
        uri = uri.get("Fn::Sub", uri.get("Fn::Join"))
    if isinstance(uri, list):
        uri = uri[0] if uri and isinstance(uri[0], str) else json.dumps(uri)
    if not isinstance(uri, str):
        return None
    if match := _FUNCTION_ARN_REF.search(uri):
        return kebab_case(match[1])
    if match := _LITERAL_FUNCTION_ARN.search(uri):
        return match[1]
    return None


# --- routing -----------------------------------------------------------------------------------


@dataclass
class Route:
    template: str
    methods: dict[str, str]  # HTTP method (or "ANY") → function name

    @property
    def segments(self) -> list[str]:
        return _split(self.template)

    def match(self, segments: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """``(rank, path parameters)`` if the path fits; a lower rank is a more specific template."""
        params: dict[str, str] = {}
        rank: list[int] = []
        template = self.segments
        for index, part in enumerate(template):
            if part.startswith("{") and part.endswith("+}"):  # greedy {proxy+}: the rest, at least one
                if index >= len(segments):
                    return None
                params[part[1:-2]] = "/".join(segments[index:])
                return tuple(rank + [2]), params
            if index >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[index]
                rank.append(1)
            elif part == segments[index]:
                rank.append(0)  # literal segments beat parameters
            else:
                return None
        if len(template) != len(segments):
            return None
        return tuple(rank), params


def _split(path: str) -> list[str]:
    # Split before decoding so that an encoded slash stays inside its segment.
    return [unquote(part) for part in path.strip("/").split("/") if part != ""]


@dataclass
class Match:
    route: Route
    function: str
    path_parameters: dict[str, str]


class RoutingError(Exception):
    def __init__(self, status: int, detail: str, allow: list[str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.allow = allow or []


class RouteTable:
    def __init__(self, routes: list[Route]):
        self.routes = routes

    @classmethod
    def from_openapi(cls, document: dict) -> RouteTable:
        routes = []
        for template, item in (document.get("paths") or {}).items():
            methods = {}
            for key, operation in (item or {}).items():
                method = "ANY" if key == ANY_METHOD else key.upper()
                if method not in HTTP_METHODS + ("ANY",) or not isinstance(operation, dict):
                    continue  # path-level parameters, summary, servers, …
                integration = operation.get("x-amazon-apigateway-integration")
                if not integration or str(integration.get("type", "")).lower() != "aws_proxy":
                    continue
                function = function_name_from_uri(integration.get("uri"))
                if function is None:
                    raise OpenApiError(f"{key.upper()} {template}: cannot tell the function from {integration.get('uri')!r}")
                methods[method] = function
            if methods:
                routes.append(Route(template, methods))
        return cls(routes)

    @classmethod
    def from_file(cls, path: Path) -> RouteTable:
        with open(path) as stream:
            return cls.from_openapi(yaml.load(stream, Loader=_CloudFormationLoader))

    def serves(self, method: str, template: str) -> bool:
        """True if the API has this operation (the route template exactly as openapi.yaml writes it)."""
        return any(route.template == template and method in route.methods for route in self.routes)

    def resolve(self, method: str, path: str) -> Match:
        segments = _split(path)
        candidates = [(found, route) for route in self.routes if (found := route.match(segments))]
        if not candidates:
            raise RoutingError(404, f"No resource at {path}.")
        (rank, params), route = min(candidates, key=lambda candidate: candidate[0][0])
        function = route.methods.get(method) or route.methods.get("ANY")
        if function is None:
            allow = sorted(route.methods)
            raise RoutingError(405, f"{method} is not supported on {route.template}.", allow)
        return Match(route, function, params)


# --- event and response translation ------------------------------------------------------------


@dataclass
class IncomingRequest:
    method: str
    target: str  # path and query as sent on the request line
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


def build_event(request: IncomingRequest, match: Match) -> dict:
    """An API Gateway REST proxy event (payload format 1.0) for ``request``."""
    split = urlsplit(request.target)
    # Kept percent-encoded: lambda_http rebuilds a URI from it, which a decoded space would break.
    path = split.path or "/"
    query = parse_qsl(split.query, keep_blank_values=True)

    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        multi_headers.setdefault(name, []).append(value)
    # API Gateway adds these; code behind it may rely on them (e.g. to log the caller).
    lowered = {name.lower() for name in multi_headers}
    for name, value in (("X-Forwarded-For", request.source_ip), ("X-Forwarded-Proto", "http")):
        if name.lower() not in lowered:
            multi_headers[name] = [value]

    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)

    body: str | None = None
    is_base64 = False
    if request.body:
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(request.body).decode("ascii"), True

    now = time.time()
    request_id = str(uuid.uuid4())
    host = next((value for name, value in request.headers if name.lower() == "host"), "127.0.0.1")
    return {
        "resource": match.route.template,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": match.route.template,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{STAGE}{path}",
            "accountId": c.ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": host.split(":")[0],
            "domainName": host.split(":")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": request.source_ip, "userAgent": multi_headers.get("User-Agent", [None])[-1]},
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


@dataclass
class OutgoingResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, document: dict, content_type: str = "application/json") -> OutgoingResponse:
    return OutgoingResponse(status, [("Content-Type", content_type)], json.dumps(document).encode())


def problem(status: int, detail: str) -> OutgoingResponse:
    return _json_response(
        status,
        {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail},
        "application/problem+json",
    )


# What API Gateway puts in $context.error.message for the answers this stand-in makes itself.
_GATEWAY_MESSAGES = {"DEFAULT_5XX": "Internal server error", "INTEGRATION_TIMEOUT": "Endpoint request timed out"}


class GatewayResponses:
    """The API's ``x-amazon-apigateway-gateway-responses``: how API Gateway words its own answers.

    A type without an entry falls back to DEFAULT_4XX/DEFAULT_5XX, then to API Gateway's built-in
    ``{"message": …}``.  Header values are API Gateway's static ``'…'`` literals; a value that is a
    template parameter (``Fn::Sub``) takes the local stack's value of it, and an empty one is left out.
    """

    def __init__(self, responses: dict, parameters: dict[str, str] | None = None):
        self.responses = responses or {}
        self.parameters = parameters or {}

    @classmethod
    def from_file(cls, path: Path, parameters: dict[str, str] | None = None) -> GatewayResponses:
        with open(path) as stream:
            document = yaml.load(stream, Loader=_CloudFormationLoader)
        return cls(document.get("x-amazon-apigateway-gateway-responses") or {}, parameters)

    def render(self, response_type: str, status: int, request: IncomingRequest, message: str) -> OutgoingResponse:
        default = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        entry = self.responses.get(response_type) or self.responses.get(default)
        if entry is None:
            return _json_response(status, {"message": message})
        context = {
            "$context.httpMethod": request.method,
            "$context.path": urlsplit(request.target).path,
            "$context.requestId": str(uuid.uuid4()),
            "$context.error.responseType": response_type,
            "$context.error.messageString": json.dumps(message),
            "$context.error.message": message,
        }
        body = (entry.get("responseTemplates") or {}).get("application/json", "")
        # Longest names first: $context.error.message is a prefix of $context.error.messageString.
        for name in sorted(context, key=len, reverse=True):
            body = body.replace(name, context[name])
        headers = []
        for key, value in (entry.get("responseParameters") or {}).items():
            value = self._header_value(value)
            if key.startswith("gatewayresponse.header.") and value:
                headers.append((key.removeprefix("gatewayresponse.header."), value))
        return OutgoingResponse(int(entry.get("statusCode") or status), headers, body.encode())

    def _header_value(self, value) -> str:
        if isinstance(value, dict) and "Fn::Sub" in value:
            template, variables = value["Fn::Sub"]
            for name, expression in variables.items():
                first = self.parameters.get(expression["Fn::Select"][1]["Ref"], "").split(",")[0].strip()
                template = template.replace("${" + name + "}", first)
            value = template
        return str(value).strip("'")


def translate_response(payload: bytes) -> OutgoingResponse | None:
    """A Lambda proxy response document → HTTP; None if malformed (API Gateway's 502)."""
    try:
        document = json.loads(payload)
        status = int(document["statusCode"])
    except (ValueError, KeyError, TypeError):
        log.warning("malformed Lambda proxy response: %.500r", payload)
        return None

    # As API Gateway does: multiValueHeaders win; headers add only names not already there.
    headers: list[tuple[str, str]] = []
    seen = set()
    for name, values in (document.get("multiValueHeaders") or {}).items():
        seen.add(name.lower())
        headers.extend((name, str(value)) for value in values)
    for name, value in (document.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]

    body = document.get("body") or ""
    data = base64.b64decode(body) if document.get("isBase64Encoded") else body.encode("utf-8")
    return OutgoingResponse(status, headers, data)


# --- the server --------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: in a burst of callers the kernel drops the connections
    # past it, and each caller's TCP stack tries again after 1, 3, 7… seconds, a stall that API Gateway
    # never shows (the load script found it).
    request_queue_size = 1024
    daemon_threads = True


class Gateway:
    def __init__(
        self,
        routes: RouteTable,
        lambda_endpoint: LambdaEndpoint,
        host: str = "127.0.0.1",
        port: int = 0,
        responses: GatewayResponses | None = None,
    ):
        self.routes = routes
        self.responses = responses or GatewayResponses({})
        self.lambda_endpoint = lambda_endpoint
        gateway = self

        class Handler(_Handler):
            pass

        Handler.gateway = gateway
        self._server = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def handle(self, request: IncomingRequest) -> OutgoingResponse:
        try:
            match = self.routes.resolve(request.method, urlsplit(request.target).path)
        except RoutingError as error:
            if error.status == 404:
                # API Gateway's answer for no route is 403; the contract makes it the 404 it is.
                return self.responses.render("MISSING_AUTHENTICATION_TOKEN", 403, request, "Missing Authentication Token")
            response = problem(error.status, error.detail)
            if error.allow:
                response.headers.append(("Allow", ", ".join(error.allow)))
            return response

        event = json.dumps(build_event(request, match)).encode()
        try:
            result = self.lambda_endpoint.invoke(match.function, event)
        except TimeoutError:
            return self._gateway_error("INTEGRATION_TIMEOUT", 504, request)
        except Exception as error:  # noqa: BLE001 - cargo lambda unreachable or hung up
            log.warning("%s: cargo lambda unreachable: %s", match.function, error)
            return self._gateway_error("DEFAULT_5XX", 502, request)
        if result.status != 200:
            detail = result.function_error() or result.body[:500]
            log.warning("%s failed (HTTP %s): %s", match.function, result.status, detail)
            return self._gateway_error("DEFAULT_5XX", 502, request)
        return translate_response(result.body) or self._gateway_error("DEFAULT_5XX", 502, request)

    def _gateway_error(self, response_type: str, status: int, request: IncomingRequest) -> OutgoingResponse:
        return self.responses.render(response_type, status, request, _GATEWAY_MESSAGES[response_type])

    def start(self) -> Gateway:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="api-gateway", daemon=True
        )
        self._thread.start()
        log.info("API on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, which only start() runs
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length

    def _serve(self) -> None:
        started = time.monotonic()
        request = IncomingRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=self._read_body(),
            source_ip=self.client_address[0],
        )
        response = self.gateway.handle(request)
        # Logged before the body goes out, so a client that has read its answer finds the line.
        log.info("%s %s %s %.0fms", self.command, self.path, response.status, (time.monotonic() - started) * 1000)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Date", formatdate(usegmt=True))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_HEAD = do_PATCH = _serve

    def __getattr__(self, name: str):
        # Any other method (TRACE, CONNECT, PROPFIND, …) is routed too, and so answered as the API
        # answers an undeclared method (405 problem+json with Allow) or path (404), never with
        # BaseHTTPRequestHandler's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A request that does not parse (bad request line, header too long): problem+json as well.
        status = HTTPStatus(code)
        body = json.dumps(
            {"type": "about:blank", "title": status.phrase, "status": code, "detail": message or status.description}
        ).encode()
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def send_response(self, code: int, message: str | None = None) -> None:
        # The default also logs the request; _serve logs once, with the timing.
        self.send_response_only(code, message)
        self.send_header("Server", "portcullis-local")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        log.debug(format, *args)
