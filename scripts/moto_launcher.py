"""Start moto's standalone server with the behaviours below corrected.

moto (5.2.x) answers two S3 calls in ways real S3 never does, and aws-sdk-s3
either rejects the reply or sees a difference that never goes away:

* GetBucketVersioning: the root element is <GetBucketVersioningResponse>
  instead of <VersioningConfiguration>; aws-sdk-s3 fails to decode it.
* GetBucketReplication: every rule comes back with Filter {Prefix: ""} and
  DeleteMarkerReplication Disabled, whatever was stored; and the tags of a
  Filter.And are dropped (stored under the XML element's name, Tag, where
  the reply's serializer reads Tags). S3 returns them (S3 API reference,
  "ReplicationRuleAndOperator": Prefix and Tags).
* Bucket policies: moto applies Deny statements to object calls and ignores
  their Conditions, so a TLS-only statement (Deny when aws:SecureTransport
  is false) denies every object call. The launcher treats requests as made
  over TLS, as every request to real S3 from the tool is: such statements
  are skipped; every other statement is evaluated as moto does.
* Bucket policies again: conditions on aws:PrincipalArn (the Arn*/String*
  operators) are evaluated against the caller (an assumed role's role ARN,
  an IAM user's ARN, else the account root), as S3 does; a statement whose
  conditions hold applies, one whose conditions do not is skipped. moto
  also names object actions after the HTTP method: HEAD is s3:GetObject,
  POST (multipart uploads) s3:PutObject, and a request with a versionId is
  s3:GetObjectVersion / s3:DeleteObjectVersion, as in S3's action list;
  a denial answers AccessDenied as S3 does (moto: a bare 403); NotResource
  is matched (moto takes a statement without Resource for a trust policy).

* PutObjectLockConfiguration on a versioned bucket that already holds
  objects: moto refuses it ("Bucket needs to be empty"); S3 has allowed
  turning Object Lock on for an existing versioned bucket since November
  2023 (S3 user guide, "Enabling S3 Object Lock": "you can enable Object
  Lock for new or existing buckets"). The launcher allows it; the default
  retention then applies only to versions put after it, as on S3.

* GetCallerIdentity for credentials moto did not issue: moto answers a
  made-up `arn:aws:sts::ACCOUNT:user/moto`; the launcher answers the
  account root, `arn:aws:iam::ACCOUNT:root`, as AWS does for root
  credentials (AWS STS API reference, GetCallerIdentity) — and as the
  bucket-policy evaluation above takes such a caller — so that the tool's
  "would this statement shut out who runs it" sees the same principal
  S3 evaluates.

* ListObjects(V2) with a delimiter on a versioned bucket: a "directory"
  whose objects were all deleted (only delete markers left) is still
  listed among CommonPrefixes; S3 lists a prefix only while a current
  object is under it (S3 user guide, "Organizing objects using
  prefixes"; a delete marker is not a current object). pgBackRest lists
  its backup directories this way, so a deleted backup looked present.

With MOTO_CLOCK_FILE set, S3's clock (object LastModified, delete
markers, Object Lock retention dates) runs that file's number of seconds
ahead (negative: behind) of the system clock, read at every use: a test
writes -3456000 into it, puts an object, and S3 holds a version made 40
days ago, as it would have had the object been put then. The pinned moto
has no time-travel API, and no other way to have an old version.

Both handlers are replaced on moto's S3Response class before
moto.server.main runs. Usage: python moto_launcher.py [moto_server args...]

With MOTO_TLS_PORT, MOTO_TLS_CERT and MOTO_TLS_KEY set, the same state is
also served over HTTPS on 127.0.0.1:MOTO_TLS_PORT (pgBackRest 2.45 speaks
only HTTPS to S3). werkzeug closes a connection without a TLS close_notify
and pgBackRest, which reads a reply to the end of the connection, then fails
with "unexpected eof while reading": the TLS listener unwraps each socket
(sending close_notify) before closing it.
"""

import json
import os
import re
import socket
import sys
import threading
from fnmatch import fnmatchcase
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from moto.s3.models import FakeBucket, S3Backend
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


def _and_tags(filt):
    """A stored Filter with And's tags under Tags, as a list."""
    and_ = filt.get("And") if isinstance(filt, dict) else None
    if not isinstance(and_, dict) or "Tag" not in and_:
        return filt
    tags = and_["Tag"]
    rest = {k: v for k, v in and_.items() if k != "Tag"}
    rest["Tags"] = tags if isinstance(tags, list) else [tags]
    return {**filt, "And": rest}


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
            out["Filter"] = _and_tags(rule["Filter"]) if rule["Filter"] is not None else {}
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


_current = threading.local()
_original_key_response = S3Response._key_response


def _key_response(self, request, full_url):
    # Keep the request at hand for get_permission (moto's server handles
    # each request on its own thread).
    _current.request = request
    try:
        out = _original_key_response(self, request, full_url)
    finally:
        _current.request = None
    # A bucket-policy denial comes back as a bare 403; S3 says AccessDenied.
    if isinstance(out, tuple) and len(out) == 3 and out[0] == 403 and not out[2]:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            "<Message>Access Denied</Message></Error>"
        )
        return 403, {"Content-Type": "application/xml"}, body
    return out


def _caller_arn():
    """aws:PrincipalArn of the request being handled."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    account = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
    root = f"arn:aws:iam::{account}:root"
    request = getattr(_current, "request", None)
    if request is None:
        return root
    auth = request.headers.get("Authorization", "")
    m = re.search(r"Credential=([^/,\s]+)/", auth)
    key = m.group(1) if m else parse_qs(urlparse(request.url).query).get("X-Amz-Credential", [""])[0].split("/")[0]
    if not key:
        return root
    for acc in list(sts_backends.keys()):
        for backend in sts_backends[acc].values():
            for r in backend.assumed_roles:
                if r.access_key_id == key:
                    return r.role_arn
    for acc in list(iam_backends.keys()):
        for backend in iam_backends[acc].values():
            for user in backend.users.values():
                if any(k.access_key_id == key for k in user.access_keys):
                    return user.arn
    return root


def _principal_conditions_hold(cond, caller):
    """True/False when every condition is on aws:PrincipalArn (or
    aws:PrincipalServiceName, absent for a caller with credentials), else
    None."""
    for op, kv in cond.items():
        if not isinstance(kv, dict):
            return None
        base = op[: -len("IfExists")] if op.endswith("IfExists") else op
        for key, values in kv.items():
            if key.lower() == "aws:principalservicename":
                # Requests signed with credentials come from IAM
                # principals: the key is absent, so a negated operator or
                # …IfExists holds, any other does not.
                if not ("Not" in base or op.endswith("IfExists")):
                    return False
                continue
            if key.lower() != "aws:principalarn":
                return None
            values = values if isinstance(values, list) else [values]
            like = any(fnmatchcase(caller, v) for v in values)
            equal = caller in values
            if base in ("ArnLike", "ArnEquals", "StringLike"):
                ok = like
            elif base in ("ArnNotLike", "ArnNotEquals", "StringNotLike"):
                ok = not like
            elif base == "StringEquals":
                ok = equal
            elif base == "StringNotEquals":
                ok = not equal
            else:
                return None
            if not ok:
                return False
    return True


def _real_action(action):
    request = getattr(_current, "request", None)
    query = parse_qs(urlparse(request.url).query, keep_blank_values=True) if request is not None else {}
    action = {"s3:HeadObject": "s3:GetObject", "s3:PostObject": "s3:PutObject"}.get(action, action)
    if "versionId" in query and action in ("s3:GetObject", "s3:DeleteObject"):
        action += "Version"
    return action


def get_permission(self, action, resource):
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    doc = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    caller = None
    kept = []
    for s in statements:
        if _tls_only(s):
            continue
        cond = s.get("Condition") if isinstance(s, dict) else None
        if cond:
            if caller is None:
                caller = _caller_arn()
            holds = _principal_conditions_hold(cond, caller)
            if holds is False:
                continue
            if holds is True:
                s = {k: v for k, v in s.items() if k != "Condition"}
        # moto reads a statement without Resource as a trust policy
        # (permitted): NotResource is matched here instead.
        if isinstance(s, dict) and "NotResource" in s and "Resource" not in s:
            nr = s["NotResource"] if isinstance(s["NotResource"], list) else [s["NotResource"]]
            if any(fnmatchcase(resource, r) for r in nr):
                continue
            s = {**{k: v for k, v in s.items() if k != "NotResource"}, "Resource": "*"}
        kept.append(s)
    if not kept:
        return PermissionResult.NEUTRAL
    doc["Statement"] = kept
    return IAMPolicy(json.dumps(doc)).is_action_permitted(_real_action(action), resource)


S3Response.get_bucket_versioning = get_bucket_versioning


def _shifted_clock(path):
    import datetime

    import moto.s3.models as s3_models

    plain = s3_models.utcnow

    def utcnow():
        try:
            with open(path) as f:
                offset = float(f.read().strip() or 0)
        except (OSError, ValueError):
            offset = 0
        return plain() + datetime.timedelta(seconds=offset)

    s3_models.utcnow = utcnow


if os.environ.get("MOTO_CLOCK_FILE"):
    _shifted_clock(os.environ["MOTO_CLOCK_FILE"])

def put_object_lock_configuration(self, bucket_name, lock_enabled, mode=None, days=None, years=None):
    """moto's, without its check that the bucket holds no object."""
    from moto.s3.exceptions import InvalidBucketState

    bucket = self.get_bucket(bucket_name)
    if not bucket.is_versioned:
        raise InvalidBucketState(
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
        )
    if lock_enabled:
        bucket.object_lock_enabled = True
        bucket.versioning_status = "Enabled"
    bucket.default_lock_mode = mode
    bucket.default_lock_days = days
    bucket.default_lock_years = years


S3Backend.put_object_lock_configuration = put_object_lock_configuration


def _caller_identity():
    from moto.sts.models import STSBackend
    from moto.iam.models import iam_backends

    plain = STSBackend.get_caller_identity

    def get_caller_identity(self, access_key_id, region):
        issued = self.get_assumed_role_from_access_key(access_key_id) or iam_backends[self.account_id][
            self.partition
        ].get_user_from_access_key_id(access_key_id)
        if issued:
            return plain(self, access_key_id, region)
        return self.account_id, f"arn:aws:iam::{self.account_id}:root", self.account_id

    STSBackend.get_caller_identity = get_caller_identity


_caller_identity()


def _no_deleted_folders():
    from moto.s3.models import FakeDeleteMarker

    plain = S3Backend.list_objects

    def list_objects(self, bucket, prefix, delimiter, marker, max_keys):
        keys, folders, truncated, next_marker = plain(self, bucket, prefix, delimiter, marker, max_keys)
        if delimiter and folders:
            live = [name for name, key in bucket.keys.items() if not isinstance(key, FakeDeleteMarker)]
            folders = [f for f in folders if any(name.startswith(f) for name in live)]
        return keys, folders, truncated, next_marker

    S3Backend.list_objects = list_objects


_no_deleted_folders()

FakeBucket.get_permission = get_permission
S3Response._key_response = _key_response
S3Response.get_bucket_replication = get_bucket_replication


def _serve_tls(port, cert, key):
    import ssl

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=True, ssl_context=ctx)
    plain_shutdown = server.shutdown_request

    def shutdown_request(request):
        try:
            request = request.unwrap()
        except (OSError, ValueError, AttributeError):
            pass
        plain_shutdown(request)

    server.shutdown_request = shutdown_request
    # Each reply goes out as several small TLS records (status line and
    # headers, then the body): with Nagle's algorithm on, the second waits
    # for the ACK of the first, which the client delays (~40 ms on Linux
    # loopback), so every request took ~45 ms against ~3 ms over HTTP.
    # Real S3 has no such stall; TCP_NODELAY on each connection removes it.
    plain_get_request = server.get_request

    def get_request():
        conn, addr = plain_get_request()
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return conn, addr

    server.get_request = get_request
    server.serve_forever()


if __name__ == "__main__":
    from moto.server import main

    tls_port = os.environ.get("MOTO_TLS_PORT")
    if tls_port:
        threading.Thread(
            target=_serve_tls,
            args=(int(tls_port), os.environ["MOTO_TLS_CERT"], os.environ["MOTO_TLS_KEY"]),
            daemon=True,
        ).start()
    main(sys.argv[1:])
