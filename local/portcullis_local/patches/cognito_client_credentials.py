"""The token endpoint's client-credentials grant: ``POST /{user pool id}/oauth2/token``.

Real Cognito: a pool with a domain serves ``https://<domain>/oauth2/token``.  A confidential app client
with ``AllowedOAuthFlows=[client_credentials]`` and ``AllowedOAuthFlowsUserPoolClient`` posts
``grant_type=client_credentials`` (form-encoded), authenticating with HTTP Basic (client id and secret)
or with ``client_id``/``client_secret`` in the form, and optionally ``scope`` (space-separated, each one
of the client's ``AllowedOAuthScopes``; none asks for all of them).  The answer is
``{"access_token", "token_type": "Bearer", "expires_in"}``: an RS256 JWT signed with the pool's key,
with ``iss``, ``sub`` (the client id), ``client_id``, ``token_use: access``, ``scope``, ``exp``, ``iat``,
``jti`` and ``version: 2`` and no ``aud``, valid for the client's ``AccessTokenValidity``.  Failures are
400 with ``{"error": "invalid_request" | "invalid_client" | "unauthorized_client" |
"unsupported_grant_type" | "invalid_scope"}``; a deleted client is ``invalid_client``.

moto 5.2.5 has no token endpoint at all.  The patch adds one under the emulator's own address, beside
the JWKS moto already serves at ``/{user pool id}/.well-known/jwks.json``, and routes it to
cognito-idp as moto routes the JWKS.  The local stack gives that URL as the service tokens' token URL.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from urllib.parse import parse_qs

from joserfc import jwt
from moto.cognitoidp import urls
from moto.cognitoidp.models import cognitoidp_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

TOKEN_PATH = "/oauth2/token"
_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _error(code: str, status: int = 400):
    return status, {"Content-Type": "application/json"}, json.dumps({"error": code})


def _find_pool(pool_id: str):
    for regions in cognitoidp_backends.values():
        for backend in regions.values():
            pool = backend.user_pools.get(pool_id)
            if pool is not None:
                return pool
    return None


def _credentials(request, form: dict[str, str]) -> tuple[str | None, str | None]:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _access_token_seconds(client) -> int:
    config = client.extended_config
    validity = config.get("AccessTokenValidity")
    if not validity:
        return 3600
    unit = (config.get("TokenValidityUnits") or {}).get("AccessToken", "hours")
    return int(validity) * _UNITS.get(unit, 3600)


def token_endpoint(request, full_url, headers):
    if request.method != "POST":
        return _error("invalid_request", 405)
    pool_id = request.path.strip("/").split("/")[0]
    form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
    if form.get("grant_type") != "client_credentials":
        return _error("unsupported_grant_type")
    client_id, secret = _credentials(request, form)
    pool = _find_pool(pool_id)
    client = pool.clients.get(client_id) if pool is not None and client_id else None
    if client is None or not client.generate_secret or secret != client.secret:
        return _error("invalid_client")
    config = client.extended_config
    if "client_credentials" not in (config.get("AllowedOAuthFlows") or []) or not config.get(
        "AllowedOAuthFlowsUserPoolClient"
    ):
        return _error("unauthorized_client")
    allowed = config.get("AllowedOAuthScopes") or []
    requested = form.get("scope", "").split() or allowed
    if not requested or any(scope not in allowed for scope in requested):
        return _error("invalid_scope")

    now = int(time.time())
    expires_in = _access_token_seconds(client)
    payload = {
        "iss": f"https://cognito-idp.{pool.region}.amazonaws.com/{pool.id}",
        "sub": client_id,
        "client_id": client_id,
        "token_use": "access",
        "scope": " ".join(requested),
        "auth_time": now,
        "iat": now,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
        "version": 2,
    }
    token = jwt.encode({"kid": "dummy", "alg": "RS256"}, payload, pool.json_web_key)
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


def _token_path_region(path_info: str) -> str | None:
    """The region of ``/{user pool id}/oauth2/token``, or None for any other path."""
    parts = path_info.strip("/").split("/")
    if len(parts) != 3 or "/".join(parts[1:]) != TOKEN_PATH.strip("/"):
        return None
    return parts[0].rsplit("_", 1)[0] if "_" in parts[0] else "us-east-1"


def apply() -> None:
    if getattr(DomainDispatcherApplication.infer_service_region_host, "__portcullis_token__", False):
        return
    urls.url_paths["{0}/(?P<user_pool_id>[^/]+)/oauth2/token$"] = token_endpoint

    original = DomainDispatcherApplication.infer_service_region_host

    # Before moto's own inference: it takes any Authorization header for a SigV4 one, and a client's
    # HTTP Basic credentials would send the request to S3.
    @functools.wraps(original)
    def infer_service_region_host(self, environ, path):
        region = _token_path_region(environ.get("PATH_INFO", ""))
        if region is not None:
            return f"cognito-idp.{region}.amazonaws.com"
        return original(self, environ, path)

    infer_service_region_host.__portcullis_token__ = True
    DomainDispatcherApplication.infer_service_region_host = infer_service_region_host
