"""patches/cognito_client_credentials.py: the token endpoint's client-credentials grant, over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _post(url: str, form: dict, basic: tuple[str, str] | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def machine_client(aws, emulator):
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"cc-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier="portcullis",
        Name="Portcullis",
        Scopes=[{"ScopeName": n, "ScopeDescription": n} for n in ("apps:read", "apps:write")],
    )
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="ci",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["portcullis/apps:read"],
        AccessTokenValidity=30,
        TokenValidityUnits={"AccessToken": "minutes"},
    )["UserPoolClient"]
    return pool_id, client["ClientId"], client["ClientSecret"], f"{emulator.url}/{pool_id}/oauth2/token"


def test_a_client_gets_a_signed_access_token_with_its_scopes_and_no_audience(machine_client, emulator):
    pool_id, client_id, secret, url = machine_client
    status, body = _post(url, {"grant_type": "client_credentials"}, basic=(client_id, secret))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    claims = _claims(body["access_token"])
    assert claims["client_id"] == claims["sub"] == client_id
    assert claims["token_use"] == "access"
    assert claims["scope"] == "portcullis/apps:read"
    assert claims["iss"].endswith(f"/{pool_id}") and "aud" not in claims
    assert claims["exp"] - claims["iat"] == 1800
    # Signed with the key the pool's JWKS publishes.
    from joserfc import jwk, jwt

    with urllib.request.urlopen(f"{emulator.url}/{pool_id}/.well-known/jwks.json") as answer:
        keys = jwk.KeySet.import_key_set(json.load(answer))
    assert jwt.decode(body["access_token"], keys).claims["client_id"] == client_id
    # The secret may also travel in the form.
    status, _ = _post(url, {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert status == 200


def test_bad_credentials_grants_and_scopes_are_refused_as_cognito_does(machine_client, aws):
    pool_id, client_id, secret, url = machine_client
    grant = {"grant_type": "client_credentials"}
    assert _post(url, grant, basic=(client_id, "wrong")) == (400, {"error": "invalid_client"})
    assert _post(url, {"grant_type": "password"}, basic=(client_id, secret)) == (400, {"error": "unsupported_grant_type"})
    scoped = {**grant, "scope": "portcullis/apps:write"}
    assert _post(url, scoped, basic=(client_id, secret)) == (400, {"error": "invalid_scope"})
    # A deleted client gets nothing more.
    aws("cognito-idp").delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    assert _post(url, grant, basic=(client_id, secret)) == (400, {"error": "invalid_client"})


def test_a_client_without_the_grant_is_unauthorized(aws, emulator):
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"cc-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="web", GenerateSecret=True)["UserPoolClient"]
    status, body = _post(
        f"{emulator.url}/{pool_id}/oauth2/token",
        {"grant_type": "client_credentials"},
        basic=(client["ClientId"], client["ClientSecret"]),
    )
    assert (status, body) == (400, {"error": "unauthorized_client"})
