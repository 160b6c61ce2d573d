"""DynamoDB writes are atomic, conditions included.

On AWS a conditional ``PutItem``, ``UpdateItem`` or ``DeleteItem`` checks its condition and writes as
one step, and ``TransactWriteItems`` checks every condition and applies every write all-or-nothing,
isolated from concurrent writes.  Portcullis relies on that for its guards: one app per domain, one
holder per listener priority, one tenant per granted target.

moto 5.2.5 checks conditions and then writes, with nothing stopping another request thread in between,
so two concurrent creates of one domain can both succeed (a local black-box race test saw [202, 202]).
This patch serialises the backend's write operations with one lock, which gives each the isolation
AWS gives it.  Reads are left alone.
"""

from __future__ import annotations

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")

_writes = threading.RLock()


def apply() -> None:
    for name in WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "__portcullis_patch__", False):
            continue

        def serialised(self, *args, __original=original, **kwargs):
            with _writes:
                return __original(self, *args, **kwargs)

        serialised = functools.wraps(original)(serialised)
        serialised.__portcullis_patch__ = True
        setattr(DynamoDBBackend, name, serialised)
