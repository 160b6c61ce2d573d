"""Names and values the local stack shares with the Rust functions and the tests.

They are fixed so that the bootstrap, the environment handed to the functions and the black-box tests
agree without passing values around.  They are local-only: nothing here is a secret.
"""

ACCOUNT_ID = "123456789012"  # moto's default account; every ARN the emulator mints uses it
REGION = "us-east-1"

# Dummy credentials: moto accepts anything, but the SDKs refuse to sign without some.
ACCESS_KEY_ID = "local"
SECRET_ACCESS_KEY = "local"

TABLE_NAME = "portcullis"
STATE_MACHINE_PREFIX = "portcullis-"


def state_machine_role_arn(name: str) -> str:
    """Each state machine's role, named after it (SAM gives each its own role too). The executor's calls
    carry the role's name as their SDK app name, which is how the IAM check tells them apart."""
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"


PROVISIONER_FUNCTION = "provisioner"
PROVISIONER_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{PROVISIONER_FUNCTION}"

OPERATORS_POOL_NAME = "portcullis-operators"
OPERATORS_CLIENT_NAME = "portcullis-local"
# The operators' pool resource server whose scopes service tokens carry (crates/portcullis: RESOURCE_SERVER).
SERVICE_TOKEN_RESOURCE_SERVER = "portcullis"
SERVICE_TOKEN_SCOPES = (
    ("apps:read", "Read apps, their events and users; run preflight checks"),
    ("apps:write", "Create and delete apps"),
    ("users:write", "Invite, re-invite and revoke users of apps"),
)
DEMO_TENANT = "demo"
ADMIN_USER = "admin@demo.test"
VIEWER_USER = "viewer@demo.test"
# A platform operator: runs the tenant registry; belongs to no tenant.
PLATFORM_USER = "platform@demo.test"
# The id under which the demo tenant is granted the demo ALB's listener and target group.
DEMO_TARGET_ID = "demo-alb"
# The operators' password on the local stack only.  It satisfies Cognito's default password policy
# (upper, lower, digit, symbol, 8+ characters) so the same users would also be valid on a real pool.
LOCAL_PASSWORD = "Portcullis-local-1!"

DEMO_LOAD_BALANCER_NAME = "portcullis-demo"
DEMO_TARGET_GROUP_NAME = "portcullis-demo-app"
DEMO_CERTIFICATE_DOMAIN = "*.demo.test"

DEFAULT_API_PORT = 4000
DEFAULT_AWS_PORT = 4566
DEFAULT_LAMBDA_PORT = 9000
