"""patches/route53_delete_values.py: a DELETE removes only the record as it is now, as Route 53 does."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def zone(aws):
    route53 = aws("route53")
    name = f"z{uuid.uuid4().hex[:8]}.example.com"
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
    return route53, zone_id, name


def _change(route53, zone_id, action, record):
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]})


def _cname(name, value, ttl=300):
    return {"Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}]}


def _records(route53, zone_id, name, kind):
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return [r for r in sets if r["Name"].rstrip(".") == name and r["Type"] == kind]


def _refused(route53, zone_id, action, record) -> str:
    with pytest.raises(ClientError) as refused:
        _change(route53, zone_id, action, record)
    assert refused.value.response["Error"]["Code"] == "InvalidChangeBatch"
    return refused.value.response["Error"]["Message"]


def test_a_delete_with_other_values_is_refused_and_the_record_stays(zone):
    route53, zone_id, name = zone
    record = f"_v.{name}"
    _change(route53, zone_id, "UPSERT", _cname(record, "someone.else.test"))
    message = _refused(route53, zone_id, "DELETE", _cname(record, "ours.test"))
    assert "but the values provided do not match the current values" in message
    assert "but the values provided" in _refused(route53, zone_id, "DELETE", _cname(record, "someone.else.test", ttl=60))
    assert len(_records(route53, zone_id, record, "CNAME")) == 1


def test_a_delete_of_a_missing_record_is_refused_as_not_found(zone):
    route53, zone_id, name = zone
    record = f"gone.{name}"
    assert "but it was not found" in _refused(route53, zone_id, "DELETE", _cname(record, "x.test"))
    _change(route53, zone_id, "UPSERT", _cname(record, "x.test"))
    _change(route53, zone_id, "DELETE", _cname(record, "x.test"))
    assert "but it was not found" in _refused(route53, zone_id, "DELETE", _cname(record, "x.test"))


def test_a_delete_with_the_current_values_removes_it(zone):
    route53, zone_id, name = zone
    _change(route53, zone_id, "UPSERT", _cname(f"c.{name}", "target.example.test"))
    _change(route53, zone_id, "DELETE", _cname(f"c.{name}", "target.example.test"))
    assert _records(route53, zone_id, f"c.{name}", "CNAME") == []

    alias = {"Name": f"a.{name}", "Type": "A",
             "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "lb-1.us-east-1.elb.amazonaws.com", "EvaluateTargetHealth": False}}
    _change(route53, zone_id, "UPSERT", alias)
    other = {**alias, "AliasTarget": {**alias["AliasTarget"], "DNSName": "lb-2.us-east-1.elb.amazonaws.com"}}
    assert "do not match" in _refused(route53, zone_id, "DELETE", other)
    _change(route53, zone_id, "DELETE", alias)
    assert _records(route53, zone_id, f"a.{name}", "A") == []
