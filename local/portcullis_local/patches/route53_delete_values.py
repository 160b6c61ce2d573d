"""Route 53 ``ChangeResourceRecordSets`` DELETE removes only the record as it is now.

Real Route 53: a DELETE must name a record set that exists, with every value it has (``TTL`` and
``ResourceRecords``, or ``AliasTarget``).  Deleting a missing one is refused ``InvalidChangeBatch``
"Tried to delete resource record set [name='…', type='…'] but it was not found".  Deleting with other
values is refused ``InvalidChangeBatch`` "… but the values provided do not match the current values".
The whole batch is refused, and nothing changes.

moto 5.2.5 looks only at its change journal.  A DELETE of a record that was ever written removes
whatever is there now, with any values.  A DELETE of one never written is refused ``InvalidInput``
with another message.  So a record someone changed after Portcullis wrote it would be deleted
locally, where AWS keeps it.

The patch checks every DELETE of a batch against the zone's current record sets first, and refuses it
as Route 53 does.  Everything else goes to moto, whose own journal check then still applies.  Names
and DNS values compare without case or a final dot, as DNS does.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.route53.exceptions import Route53ClientError
from moto.route53.models import RecordSet, Route53Backend


class InvalidChangeBatch(Route53ClientError):
    def __init__(self, message: str):
        super().__init__("InvalidChangeBatch", message)


def _dns(name: Any) -> str:
    return str(name or "").rstrip(".").lower()


def _wanted(record_set: dict) -> tuple:
    """What a DELETE says the record is."""
    alias = record_set.get("AliasTarget")
    if alias:
        return ("alias", _dns(alias.get("DNSName")), str(alias.get("HostedZoneId")))
    values = sorted(_dns(r["Value"] if isinstance(r, dict) else r) for r in record_set.get("ResourceRecords") or [])
    return ("records", str(record_set.get("TTL")), values)


def _current(record_set: RecordSet) -> tuple:
    """What the zone holds."""
    if record_set.alias_target:
        alias = record_set.alias_target
        return ("alias", _dns(alias.get("DNSName")), str(alias.get("HostedZoneId")))
    return ("records", str(record_set.ttl), sorted(_dns(r) for r in record_set.records or []))


def check_deletes(zone, changes: list[dict]) -> None:
    """Raise as Route 53 does if a DELETE of the batch names a missing record or other values."""
    for change in changes:
        if change.get("Action") != "DELETE":
            continue
        wanted = change["ResourceRecordSet"]
        name, kind = wanted["Name"], wanted["Type"]
        described = f"[name='{_dns(name)}.', type='{kind}']"
        found = [
            r
            for r in zone.rrsets
            if _dns(r.name) == _dns(name) and r.type == kind and r.set_identifier == wanted.get("SetIdentifier")
        ]
        if not found:
            raise InvalidChangeBatch(f"[Tried to delete resource record set {described} but it was not found]")
        if _current(found[0]) != _wanted(wanted):
            raise InvalidChangeBatch(
                f"[Tried to delete resource record set {described} but the values provided do not match the current values]"
            )


def apply() -> None:
    original = Route53Backend.change_resource_record_sets

    @functools.wraps(original)
    def change_resource_record_sets(self, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        check_deletes(self.get_hosted_zone(zoneid), change_list)
        return original(self, zoneid, change_list)

    Route53Backend.change_resource_record_sets = change_resource_record_sets
