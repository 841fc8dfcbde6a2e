"""Start moto's standalone server with three behaviours corrected.

moto (5.2.x) answers two S3 calls in ways real S3 never does, and aws-sdk-s3
either rejects the reply or sees a difference that never goes away:

* GetBucketVersioning: the root element is <GetBucketVersioningResponse>
  instead of <VersioningConfiguration>; aws-sdk-s3 fails to decode it.
* GetBucketReplication: every rule comes back with Filter {Prefix: ""} and
  DeleteMarkerReplication Disabled, whatever was stored.
* Bucket policies: moto applies Deny statements to object calls and ignores
  their Conditions, so a TLS-only statement (Deny when aws:SecureTransport
  is false) denies every object call. The launcher treats requests as made
  over TLS, as every request to real S3 from the tool is: such statements
  are skipped; every other statement is evaluated as moto does.

Both handlers are replaced on moto's S3Response class before
moto.server.main runs. Usage: python moto_launcher.py [moto_server args...]
"""

import json
import sys
from xml.sax.saxutils import escape

from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
from moto.core.common_types import TYPE_RESPONSE  # noqa: F401  (import check)

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def get_bucket_versioning(self):
    bucket = self.backend.get_bucket(self.bucket_name)
    status = bucket.versioning_status
    mfa = getattr(bucket, "mfa_delete", None)
    body = '<?xml version="1.0" encoding="UTF-8"?>'
    body += f'<VersioningConfiguration xmlns="{S3_NS}">'
    if status:
        body += f"<Status>{escape(status)}</Status>"
    if mfa:
        body += f"<MfaDelete>{escape(mfa)}</MfaDelete>"
    body += "</VersioningConfiguration>"
    return 200, {"Content-Type": "application/xml"}, body


_original_replication = S3Response.get_bucket_replication


def get_bucket_replication(self):
    from moto.core.responses import ActionResult
    from moto.s3.exceptions import ReplicationConfigurationNotFoundError

    self.data["Action"] = "GetBucketReplication"
    replication = self.backend.get_bucket_replication(self.bucket_name)
    if not replication:
        raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
    rules = []
    for rule in replication["Rule"]:
        out = {
            "ID": rule["ID"],
            "Priority": rule["Priority"],
            "Status": rule["Status"],
            "Destination": rule["Destination"],
        }
        # Keep what the client stored: the V2 Filter (Prefix, Tag or And) or
        # the legacy top-level Prefix, and the delete-marker setting.
        if "Filter" in rule:
            out["Filter"] = rule["Filter"] if rule["Filter"] is not None else {}
        elif "Prefix" in rule:
            out["Prefix"] = rule["Prefix"] or ""
        if "DeleteMarkerReplication" in rule:
            out["DeleteMarkerReplication"] = rule["DeleteMarkerReplication"]
        for key in ("SourceSelectionCriteria", "ExistingObjectReplication"):
            if key in rule:
                out[key] = rule[key]
        rules.append(out)
    return self.serialized(
        ActionResult({"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}})
    )


def _tls_only(statement):
    """A Deny whose only condition is aws:SecureTransport = false."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    cond = statement.get("Condition") or {}
    if len(cond) != 1:
        return False
    (op, kv), = cond.items()
    if op not in ("Bool", "BoolIfExists") or not isinstance(kv, dict) or len(kv) != 1:
        return False
    (key, value), = kv.items()
    values = value if isinstance(value, list) else [value]
    return key.lower() == "aws:securetransport" and all(str(v).lower() == "false" for v in values)


def get_permission(self, action, resource):
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    doc = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not _tls_only(s)]
    if not kept:
        return PermissionResult.NEUTRAL
    doc["Statement"] = kept
    return IAMPolicy(json.dumps(doc)).is_action_permitted(action, resource)


S3Response.get_bucket_versioning = get_bucket_versioning
FakeBucket.get_permission = get_permission
S3Response.get_bucket_replication = get_bucket_replication


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
