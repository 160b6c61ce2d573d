"""Test-only inspection of emulator state that AWS never reveals.

Tests must prove that a temporary password never appears in an API answer or a log. Only Cognito
knows the password (it emails it), and moto's ``/moto-api/data.json`` does not dump Cognito users, so
the emulator answers ``GET /_portcullis/cognito/password?userPoolId=…&username=…`` with the user's
current password. It exists only in the local emulator; nothing in the product calls it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from werkzeug.wrappers import Request, Response

PASSWORD_PATH = "/_portcullis/cognito/password"
ACCOUNT = "123456789012"
REGION = "us-east-1"


class Inspection:
    """WSGI middleware answering the inspection path and passing everything else to ``app``."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PASSWORD_PATH and environ.get("REQUEST_METHOD") == "GET":
            return self._password(Request(environ))(environ, start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _password(request: Request) -> Response:
        from moto.cognitoidp.models import cognitoidp_backends

        from .patches.cognito_resend import find_user

        pool_id = request.args.get("userPoolId", "")
        username = request.args.get("username", "")
        pool = cognitoidp_backends[ACCOUNT][REGION].user_pools.get(pool_id)
        user = find_user(pool, username) if pool else None
        if user is None:
            return Response(json.dumps({"message": "no such user"}), status=404, content_type="application/json")
        return Response(json.dumps({"password": user.password}), content_type="application/json")
