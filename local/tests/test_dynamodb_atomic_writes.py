"""patches/dynamodb_atomic_writes.py: concurrent conditional writes of one key, over HTTP, let exactly one win."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from portcullis_local.patches import dynamodb_atomic_writes

RACERS = 24


@pytest.fixture(scope="module")
def table(aws):
    dynamodb = aws("dynamodb")
    name = f"race-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _race(write) -> list[str]:
    def attempt(n: int) -> str:
        try:
            write(n)
            return "won"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(attempt, range(RACERS)))


def test_concurrent_conditional_puts_of_one_key_let_exactly_one_win(aws, table):
    dynamodb = aws("dynamodb")
    key = uuid.uuid4().hex
    outcomes = _race(
        lambda n: dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": key}, "writer": {"N": str(n)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    )
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) == {"won", "ConditionalCheckFailedException"}


def test_concurrent_transactions_guarding_one_key_let_exactly_one_win(aws, table):
    dynamodb = aws("dynamodb")
    guard = uuid.uuid4().hex

    def transaction(n: int) -> None:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": f"{guard}-app-{n}"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": guard}, "holder": {"N": str(n)}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    outcomes = _race(transaction)
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) == {"won", "TransactionCanceledException"}


def test_every_write_operation_is_serialised():
    from moto.dynamodb.models import DynamoDBBackend

    for name in dynamodb_atomic_writes.WRITES:
        assert getattr(getattr(DynamoDBBackend, name), "__portcullis_patch__", False), name
