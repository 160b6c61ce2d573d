"""gateway.py: routing from openapi.yaml, proxy events out, proxy responses back."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import textwrap
from pathlib import Path

import pytest

from portcullis_local.gateway import (
    Gateway,
    GatewayResponses,
    IncomingRequest,
    RouteTable,
    RoutingError,
    build_event,
    function_name_from_uri,
    kebab_case,
    translate_response,
)
from portcullis_local.invoke import LambdaEndpoint

OPENAPI = textwrap.dedent(
    """
    openapi: 3.0.3
    info: {title: stand-in, version: "1"}
    paths:
      /apps:
        post:
          x-amazon-apigateway-integration:
            type: aws_proxy
            httpMethod: POST
            uri:
              Fn::Sub: arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AppsApiFunction.Arn}/invocations
        get:
          x-amazon-apigateway-integration:
            type: aws_proxy
            httpMethod: POST
            uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AppsApiFunction.Arn}/invocations
      /apps/{id}:
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
        get:
          x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: {"Fn::Sub": "…/functions/${AppsApiFunction.Arn}/invocations"}}
        delete:
          x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: {"Fn::Sub": "…/functions/${AppsApiFunction.Arn}/invocations"}}
      /apps/{id}/users/batch:
        post:
          x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: {"Fn::Sub": "…/functions/${UsersApiFunction.Arn}/invocations"}}
      /apps/{id}/users/{username}:
        delete:
          x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: {"Fn::Sub": "…/functions/${UsersApiFunction.Arn}/invocations"}}
      /health:
        get:
          summary: not integrated, so not routed
    """
)


@pytest.fixture
def routes(tmp_path) -> RouteTable:
    path = tmp_path / "openapi.yaml"
    path.write_text(OPENAPI)
    return RouteTable.from_file(path)


def test_function_names_follow_the_logical_id_convention():
    assert kebab_case("AppsApi") == "apps-api"
    assert kebab_case("UsersApi") == "users-api"
    assert kebab_case("HTTPProxy") == "http-proxy"
    assert function_name_from_uri({"Fn::Sub": "x/functions/${UsersApiFunction.Arn}/invocations"}) == "users-api"
    assert function_name_from_uri({"Fn::Sub": ["x/functions/${ProvisionerFunction.Arn}/invocations", {}]}) == "provisioner"
    assert function_name_from_uri("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                                  "arn:aws:lambda:us-east-1:123456789012:function:apps-api/invocations") == "apps-api"


@pytest.mark.parametrize(
    "method, path, function, template, params",
    [
        ("POST", "/apps", "apps-api", "/apps", {}),
        ("GET", "/apps", "apps-api", "/apps", {}),
        ("GET", "/apps/a1", "apps-api", "/apps/{id}", {"id": "a1"}),
        ("GET", "/apps/a1/", "apps-api", "/apps/{id}", {"id": "a1"}),
        ("POST", "/apps/a1/users/batch", "users-api", "/apps/{id}/users/batch", {"id": "a1"}),
        ("DELETE", "/apps/a1/users/u%40x.test", "users-api", "/apps/{id}/users/{username}", {"id": "a1", "username": "u@x.test"}),
    ],
)
def test_routes_resolve(routes, method, path, function, template, params):
    match = routes.resolve(method, path)
    assert (match.function, match.route.template, match.path_parameters) == (function, template, params)


def test_literal_segments_beat_parameters(routes):
    # Both /apps/{id}/users/batch and /apps/{id}/users/{username} fit; the literal one must win,
    # and a DELETE there is then not allowed (rather than routed to {username}).
    with pytest.raises(RoutingError) as error:
        routes.resolve("DELETE", "/apps/a1/users/batch")
    assert error.value.status == 405
    assert error.value.allow == ["POST"]


@pytest.mark.parametrize("path", ["/nope", "/apps/a1/users", "/health", "/apps/a1/users/u/x"])
def test_unknown_paths_are_404(routes, path):
    with pytest.raises(RoutingError) as error:
        routes.resolve("GET", path)
    assert error.value.status == 404


def test_event_is_an_api_gateway_rest_proxy_event(routes):
    request = IncomingRequest(
        method="POST",
        target="/apps/a1/users/batch?limit=5&tag=a&tag=b&empty=",
        headers=[("Host", "127.0.0.1:4000"), ("Authorization", "Bearer t"), ("Accept", "a"), ("Accept", "b")],
        body=b'{"users":[]}',
        source_ip="127.0.0.9",
    )
    event = build_event(request, routes.resolve("POST", "/apps/a1/users/batch"))

    assert event["resource"] == "/apps/{id}/users/batch"
    assert event["path"] == "/apps/a1/users/batch"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["Authorization"] == "Bearer t"
    assert event["headers"]["Accept"] == "b"
    assert event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.9"
    assert event["queryStringParameters"] == {"limit": "5", "tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "tag": ["a", "b"], "empty": [""]}
    assert event["pathParameters"] == {"id": "a1"}
    assert event["stageVariables"] is None
    assert event["body"] == '{"users":[]}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/apps/{id}/users/batch"
    assert context["httpMethod"] == "POST"
    assert context["path"] == "/local/apps/a1/users/batch"
    assert context["stage"] == "local"
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "local"
    assert context["identity"]["sourceIp"] == "127.0.0.9"
    assert context["requestId"] and isinstance(context["requestTimeEpoch"], int)


def test_event_without_query_path_parameters_or_body_uses_nulls(routes):
    request = IncomingRequest("GET", "/apps", [("Host", "h")], b"", "127.0.0.1")
    event = build_event(request, routes.resolve("GET", "/apps"))
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] is None


def test_binary_body_is_base64(routes):
    request = IncomingRequest("POST", "/apps", [], b"\xff\x00", "127.0.0.1")
    event = build_event(request, routes.resolve("POST", "/apps"))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"


def test_response_merges_headers_like_api_gateway():
    response = translate_response(json.dumps({
        "statusCode": 201,
        "headers": {"Location": "/apps/1", "Set-Cookie": "ignored", "Content-Length": "999"},
        "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x01\x02").decode(),
        "isBase64Encoded": True,
    }).encode())

    assert response.status == 201
    assert response.headers == [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("Location", "/apps/1")]
    assert response.body == b"\x01\x02"


def test_malformed_response_is_none_for_the_gateway_to_answer_502():
    assert translate_response(b'{"body": "no status"}') is None


# --- over HTTP, with the stub standing in for cargo lambda --------------------------------------


@pytest.fixture
def gateway(stub_lambda, tmp_path):
    path = tmp_path / "openapi.yaml"
    path.write_text(textwrap.dedent(
        """
        paths:
          /echo/{thing}:
            post:
              x-amazon-apigateway-integration: {type: aws_proxy, uri: {"Fn::Sub": "${ProxyFunction.Arn}"}}
          /custom:
            get:
              x-amazon-apigateway-integration: {type: aws_proxy, uri: {"Fn::Sub": "${CustomFunction.Arn}"}}
          /boom:
            get:
              x-amazon-apigateway-integration: {type: aws_proxy, uri: {"Fn::Sub": "${BoomFunction.Arn}"}}
          /crash:
            get:
              x-amazon-apigateway-integration: {type: aws_proxy, uri: {"Fn::Sub": "${CrashFunction.Arn}"}}
        """
    ))
    gateway = Gateway(RouteTable.from_file(path), LambdaEndpoint("127.0.0.1", stub_lambda.port)).start()
    yield gateway
    gateway.stop()


def _request(gateway, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def test_request_reaches_the_function_as_a_proxy_event(gateway, stub_lambda):
    status, headers, body = _request(gateway, "POST", "/echo/x1?q=1", body=b'{"a":1}', headers={"Authorization": "Bearer t"})

    assert status == 200
    assert dict(headers)["Content-Type"] == "application/json"
    event = json.loads(body)
    assert stub_lambda.calls[-1][0] == "proxy"
    assert event["pathParameters"] == {"thing": "x1"}
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["headers"]["Authorization"] == "Bearer t"
    assert json.loads(event["body"]) == {"a": 1}


def test_proxy_response_comes_back_as_http(gateway, stub_lambda):
    stub_lambda.responses["custom"] = {
        "statusCode": 409,
        "headers": {"Content-Type": "application/problem+json"},
        "multiValueHeaders": {"X-Multi": ["1", "2"]},
        "body": '{"status":409}',
        "isBase64Encoded": False,
    }
    status, headers, body = _request(gateway, "GET", "/custom")

    assert status == 409
    assert ("X-Multi", "1") in headers and ("X-Multi", "2") in headers
    assert dict(headers)["Content-Type"] == "application/problem+json"
    assert body == b'{"status":409}'


@pytest.mark.parametrize("path", ["/boom", "/crash"])
def test_function_failure_is_502_internal_server_error(gateway, path):
    status, _, body = _request(gateway, "GET", path)
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_a_burst_of_callers_is_queued_not_dropped(stub_lambda):
    # Not started: nobody accepts, so every connection waits in the listen backlog. One the kernel
    # dropped would be retried by TCP only after a second, past the timeout.
    gateway = Gateway(RouteTable([]), LambdaEndpoint("127.0.0.1", stub_lambda.port))
    try:
        callers = [socket.create_connection(("127.0.0.1", gateway.port), timeout=0.5) for _ in range(300)]
        for caller in callers:
            caller.close()
    finally:
        gateway.stop()


def test_unknown_path_without_gateway_responses_is_api_gateways_own_403(gateway):
    status, _, body = _request(gateway, "GET", "/nowhere")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})


REAL_OPENAPI = Path(__file__).resolve().parents[2] / "openapi.yaml"


@pytest.fixture
def contract_gateway(stub_lambda):
    """The routes of the stub, API Gateway's own answers as the real openapi.yaml words them."""
    responses = GatewayResponses.from_file(REAL_OPENAPI, {"AllowedOrigins": "https://portal.test,https://other.test"})
    routes = RouteTable.from_openapi(
        {"paths": {"/crash": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": {"Fn::Sub": "${CrashFunction.Arn}"}}}}}}
    )
    gateway = Gateway(routes, LambdaEndpoint("127.0.0.1", stub_lambda.port), responses=responses).start()
    yield gateway
    gateway.stop()


def test_unknown_path_is_the_contracts_404_problem_with_the_portals_origin(contract_gateway):
    status, headers, body = _request(contract_gateway, "DELETE", "/nowhere")
    headers = dict(headers)
    assert status == 404
    assert (headers["Content-Type"], headers["Access-Control-Allow-Origin"]) == ("application/problem+json", "https://portal.test")
    problem = json.loads(body)
    assert (problem["title"], problem["status"], problem["detail"]) == ("Not Found", 404, "No operation at DELETE /nowhere.")


def test_a_failed_function_is_the_contracts_502_problem(contract_gateway):
    status, headers, body = _request(contract_gateway, "GET", "/crash")
    assert (status, dict(headers)["Content-Type"]) == (502, "application/problem+json")
    assert json.loads(body)["detail"] == "Internal server error"


def test_without_allowed_origins_no_cors_header_is_sent():
    responses = GatewayResponses.from_file(REAL_OPENAPI, {"AllowedOrigins": ""})
    request = IncomingRequest("GET", "/x", [], b"", "127.0.0.1")
    response = responses.render("INTEGRATION_TIMEOUT", 504, request, "Endpoint request timed out")
    assert response.status == 504
    assert "Access-Control-Allow-Origin" not in dict(response.headers)
    assert json.loads(response.body)["title"] == "Gateway Timeout"


def test_wrong_method_is_405_problem(gateway):
    status, headers, body = _request(gateway, "DELETE", "/custom")
    assert status == 405
    assert dict(headers)["Allow"] == "GET"
    problem = json.loads(body)
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Method Not Allowed", 405)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO", "PUT", "HEAD"])
def test_any_undeclared_method_is_405_problem(gateway, method):
    status, headers, body = _request(gateway, method, "/custom")
    assert status == 405
    assert dict(headers)["Allow"] == "GET"
    assert dict(headers)["Content-Type"] == "application/problem+json"
    if method != "HEAD":
        assert json.loads(body)["status"] == 405


def test_a_request_that_does_not_parse_is_a_problem(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        headers = b"".join(b"X-%d: y\r\n" % n for n in range(101))  # more than http.server takes
        connection.sendall(b"GET /custom HTTP/1.1\r\n" + headers + b"\r\n")
        answer = connection.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and b"application/problem+json" in head
    assert json.loads(body)["status"] == 431


def test_requests_are_logged_one_line_each(gateway, caplog):
    with caplog.at_level("INFO", logger="portcullis_local.gateway"):
        _request(gateway, "GET", "/nowhere")
    lines = [r.getMessage() for r in caplog.records if r.name == "portcullis_local.gateway"]
    assert len(lines) == 1 and lines[0].startswith("GET /nowhere 403 ") and lines[0].endswith("ms")


def test_the_table_says_which_operations_the_api_has():
    table = RouteTable.from_file(Path(__file__).resolve().parents[2] / "openapi.yaml")

    assert table.serves("PUT", "/tenants/{tenantId}")
    assert not table.serves("PATCH", "/tenants/{tenantId}")
    assert not table.serves("PUT", "/tenants/{id}")


def test_the_real_contract_uploads_as_is_to_any_partition():
    """openapi.yaml reaches API Gateway through AWS::Include, which takes no YAML anchors or aliases;
    and a hard-coded ``arn:aws:`` would break the other partitions (China, GovCloud)."""
    import yaml

    path = Path(__file__).resolve().parents[2] / "openapi.yaml"
    tokens = list(yaml.scan(path.read_text()))
    assert not [t for t in tokens if isinstance(t, (yaml.AnchorToken, yaml.AliasToken))]
    routes = RouteTable.from_file(path)
    assert routes.routes, "the contract routes something"
    text = path.read_text()
    assert "arn:aws:" not in text
    assert text.count("arn:${AWS::Partition}:apigateway:") == sum(len(r.methods) for r in routes.routes)
