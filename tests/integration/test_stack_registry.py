#!/usr/bin/env python3
"""The local stack's Schema Registry (Apicurio Registry, Confluent API) does what a Confluent
client relies on, with the project's own schema (schemas/EngagementEvent.avsc):

1. the global compatibility level can be set to BACKWARD (PUT /config);
2. registering the schema under a fresh subject gives an id; GET /schemas/ids/{id} returns the
   same schema (compared as parsed JSON); looking the schema up (POST /subjects/{subject}) gives
   that id again;
3. an evolved version (a new optional field with a default) registers with a new id;
4. an incompatible version (a new required field without a default) is refused with HTTP 409 and
   Confluent's error body (error_code 409).

The registry's URL comes from LP_SCHEMA_REGISTRY_URL (deploy/local/stack up / env prints it);
without it (LP_STACK_REGISTRY=0, or no stack) the test is skipped. The global level is put back
and the subject deleted at the end.
"""
import json
import os
import random
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def call(base, method, path, body=None, timeout=10):
    """(status, parsed JSON body or raw text) of a request to the registry's Confluent API."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", CONTENT_TYPE)
    if data is not None:
        req.add_header("Content-Type", CONTENT_TYPE)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def canonical(schema):
    """A schema (text or parsed) as one canonical JSON string: key order and spacing ignored."""
    if isinstance(schema, str):
        schema = json.loads(schema)
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def with_field(schema, field):
    evolved = json.loads(json.dumps(schema))
    evolved["fields"].append(field)
    return evolved


def run(checks, base, subject, text, schema):
    # 1. global compatibility
    # Confluent answers {"compatibility": ...}; Apicurio 3.0 names the key compatibilityLevel.
    status, body = call(base, "PUT", "/config", {"compatibility": "BACKWARD"})
    level = (body.get("compatibility") or body.get("compatibilityLevel")
             if isinstance(body, dict) else None)
    checks.check(status == 200 and level == "BACKWARD",
                 f"PUT /config BACKWARD: HTTP {status} {body}")
    status, body = call(base, "GET", "/config")
    checks.check(status == 200 and body.get("compatibilityLevel") == "BACKWARD",
                 f"GET /config: HTTP {status} {body}")

    # 2. register, read back by id, look up
    status, body = call(base, "POST", f"/subjects/{subject}/versions", {"schema": text})
    first = body.get("id") if status == 200 and isinstance(body, dict) else None
    if not checks.check(isinstance(first, int),
                        f"register EngagementEvent under {subject}: HTTP {status} {body}"):
        return
    status, body = call(base, "GET", f"/schemas/ids/{first}")
    got = body.get("schema") if status == 200 and isinstance(body, dict) else None
    same = got is not None and canonical(got) == canonical(schema)
    checks.check(same, f"GET /schemas/ids/{first}: HTTP {status}, {len(got or '')} characters, "
                 f"same schema as the file (canonical JSON): {same}")
    status, body = call(base, "POST", f"/subjects/{subject}", {"schema": text})
    checks.check(status == 200 and body.get("id") == first and body.get("version") == 1,
                 f"lookup POST /subjects/{subject}: HTTP {status} id {body.get('id')} "
                 f"version {body.get('version')} (expected id {first} version 1)")

    # 3. compatible evolution: a new optional field with a default
    evolved = with_field(schema, {"name": "it_note", "type": ["null", "string"],
                                  "default": None, "doc": "test field"})
    status, body = call(base, "POST", f"/subjects/{subject}/versions",
                        {"schema": json.dumps(evolved)})
    second = body.get("id") if status == 200 and isinstance(body, dict) else None
    checks.check(isinstance(second, int) and second != first,
                 f"evolved version (optional it_note, default null): HTTP {status} id {second} "
                 f"(first {first})")
    status, body = call(base, "GET", f"/subjects/{subject}/versions")
    checks.check(status == 200 and body == [1, 2],
                 f"GET /subjects/{subject}/versions: HTTP {status} {body}")

    # 4. incompatible under BACKWARD: a new required field without a default
    broken = with_field(evolved, {"name": "it_required", "type": "string"})
    status, body = call(base, "POST", f"/subjects/{subject}/versions",
                        {"schema": json.dumps(broken)})
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else body
    checks.check(status == 409 and code == 409,
                 f"incompatible version (required it_required, no default) refused: HTTP "
                 f"{status}, error_code {code}, message {str(message)[:160]!r}")
    status, body = call(base, "GET", f"/subjects/{subject}/versions")
    checks.check(status == 200 and body == [1, 2],
                 f"still two versions after the refusal: HTTP {status} {body}")


def main():
    lpit._stack_env()  # without LP_KAFKA_BROKERS/LP_REDIS_URL: reads `deploy/local/stack env`
    base = os.environ.get("LP_SCHEMA_REGISTRY_URL")
    if not base:
        lpit.log("test_stack_registry: skipped: LP_SCHEMA_REGISTRY_URL is not set (no stack, or "
                 "the stack runs without the registry: LP_STACK_REGISTRY=0)")
        sys.exit(lpit.SKIP)
    base = base.rstrip("/")
    checks = lpit.Checks("test_stack_registry")
    subject = f"it-{os.getpid()}-{random.randrange(1 << 30):x}-value"
    path = os.path.join(lpit.source_dir(), "schemas", "EngagementEvent.avsc")
    with open(path) as f:
        text = f.read()
    schema = json.loads(text)
    lpit.log(f"test_stack_registry: {base}, subject {subject}, schema {path}")
    old_level = None
    try:
        status, body = call(base, "GET", "/config")
        old_level = body.get("compatibilityLevel") if status == 200 else None
        lpit.log(f"  global compatibility before the test: {old_level}")
        run(checks, base, subject, text, schema)
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
    finally:
        # Leave the shared registry as found: its level back, the subject gone (soft delete
        # first, as Confluent requires before a permanent one).
        try:
            if old_level:
                call(base, "PUT", "/config", {"compatibility": old_level})
            call(base, "DELETE", f"/subjects/{subject}")
            call(base, "DELETE", f"/subjects/{subject}?permanent=true")
        except OSError as e:
            lpit.log(f"  (clean-up failed: {e})")
    checks.finish()


if __name__ == "__main__":
    main()
