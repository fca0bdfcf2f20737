#!/usr/bin/env python3
"""Decode leadpulse hand-offs that kcat reads, with the .avsc files only (Python 3 stdlib).

kcat decodes Avro only through a Schema Registry, and Debian 12's kcat 1.7.1 is built without
Avro support at all (`kcat -V` lists no "avro"). So kcat fetches the records and this script
decodes them with the schemas in schemas/:

    kcat -C -b BROKERS -t leads.mql -o beginning -u -f '%t %p %o %K %S\\n%k%s' \\
        | examples/handoff_decode.py --schemas schemas

Input, per record: a header line "<topic> <partition> <offset> <key length> <value length>"
(kcat's %t %p %o %K %S), then exactly that many key and value bytes (%k%s; a length of -1
means null). Values are Confluent-framed (magic byte 0, 4-byte big-endian schema id, Avro
binary), as the worker writes them by default; the schema ids are the worker's
schema_id.qualified (4), schema_id.stale (5) and schema_id.erased (6), and the account
hand-offs' 7 and 8 (AccountQualified / AccountStale, as handoff-consumer --accounts), unless
--id-qualified / --id-stale / --id-erased / --id-account-qualified / --id-account-stale say
otherwise. Output: one JSON line per record, as examples/handoff_consumer.c prints it: `type`
(LeadQualified / LeadStale / LeadErased / AccountQualified / AccountStale),
`schema_id`, every field of the record (unions as their value,
enums as their symbol), then `topic`, `partition`, `offset`, `key`. A record that does not
decode is printed as {"type": "error", ...} and the exit status is 1.

examples/kcat-handoffs.sh --decode runs the pipeline above.
"""
import argparse
import json
import os
import struct
import sys


class Truncated(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise Truncated(f"truncated record at byte {self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def long(self):
        shift, acc = 0, 0
        while True:
            b = self.take(1)[0]
            acc |= (b & 0x7F) << shift
            if not b & 0x80:
                return (acc >> 1) ^ -(acc & 1)  # zig-zag
            shift += 7
            if shift > 63:
                raise ValueError(f"varint too long at byte {self.pos}")


def decode(schema, r, named):
    """Avro binary -> Python value, for the types the hand-off schemas use and a few more."""
    if isinstance(schema, str):
        if schema in named:
            return decode(named[schema], r, named)
        schema = {"type": schema}
    if isinstance(schema, list):  # union: branch index, then the value
        i = r.long()
        if not 0 <= i < len(schema):
            raise ValueError(f"union branch {i} out of range")
        return decode(schema[i], r, named)
    t = schema["type"]
    if t in ("record", "enum", "fixed") and "name" in schema:
        named.setdefault(schema["name"], schema)
        if "namespace" in schema:
            named.setdefault(schema["namespace"] + "." + schema["name"], schema)
    if t == "null":
        return None
    if t == "boolean":
        return r.take(1) != b"\x00"
    if t in ("int", "long"):
        return r.long()
    if t == "float":
        return struct.unpack("<f", r.take(4))[0]
    if t == "double":
        return struct.unpack("<d", r.take(8))[0]
    if t == "bytes":
        return r.take(r.long()).hex()
    if t == "string":
        return r.take(r.long()).decode("utf-8")
    if t == "fixed":
        return r.take(schema["size"]).hex()
    if t == "enum":
        i = r.long()
        if not 0 <= i < len(schema["symbols"]):
            raise ValueError(f"enum {schema['name']} index {i} out of range")
        return schema["symbols"][i]
    if t == "record":
        return {f["name"]: decode(f["type"], r, named) for f in schema["fields"]}
    if t in ("array", "map"):
        out = [] if t == "array" else {}
        while True:
            n = r.long()
            if n == 0:
                return out
            if n < 0:  # a block with its byte size
                n = -n
                r.long()
            for _ in range(n):
                if t == "array":
                    out.append(decode(schema["items"], r, named))
                else:
                    k = r.take(r.long()).decode("utf-8")
                    out[k] = decode(schema["values"], r, named)
    if isinstance(t, (dict, list)) or t in named:
        return decode(t, r, named)
    raise ValueError(f"unsupported Avro type {t!r}")


def collect_named(schema, named):
    """Every named type of a schema, by name and full name: a later field may refer to a type
    defined inside an array that a record leaves empty."""
    if isinstance(schema, list):
        for s in schema:
            collect_named(s, named)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            named.setdefault(schema["name"], schema)
            if "namespace" in schema:
                named.setdefault(schema["namespace"] + "." + schema["name"], schema)
        for f in schema.get("fields", []):
            collect_named(f["type"], named)
        for k in ("items", "values"):
            if k in schema:
                collect_named(schema[k], named)
        if isinstance(schema.get("type"), (dict, list)):
            collect_named(schema["type"], named)


def decode_value(value, schemas):
    if len(value) < 5:
        raise ValueError(f"{len(value)} bytes: shorter than the 5-byte Confluent header")
    if value[0] != 0:
        raise ValueError(f"not Confluent-framed (first byte 0x{value[0]:02x})")
    sid = struct.unpack(">I", value[1:5])[0]
    if sid not in schemas:
        raise ValueError(f"unknown schema id {sid}")
    name, schema = schemas[sid]
    r = Reader(value[5:])
    named = {}
    collect_named(schema, named)
    rec = decode(schema, r, named)
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes")
    return dict({"type": name, "schema_id": sid}, **rec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemas", default=os.path.join(os.path.dirname(__file__), "..", "schemas"))
    ap.add_argument("--id-qualified", type=int, default=4)
    ap.add_argument("--id-stale", type=int, default=5)
    ap.add_argument("--id-erased", type=int, default=6)
    ap.add_argument("--id-account-qualified", type=int, default=7)
    ap.add_argument("--id-account-stale", type=int, default=8)
    args = ap.parse_args()
    schemas = {}
    for sid, name in ((args.id_qualified, "LeadQualified"), (args.id_stale, "LeadStale"),
                      (args.id_erased, "LeadErased"),
                      (args.id_account_qualified, "AccountQualified"),
                      (args.id_account_stale, "AccountStale")):
        path = os.path.join(args.schemas, name + ".avsc")
        if name.startswith("Account") and not os.path.exists(path):
            continue  # a schema folder from before the account hand-offs
        with open(path) as f:
            schemas[sid] = (name, json.load(f))

    src, out, status = sys.stdin.buffer, sys.stdout, 0
    while True:
        header = src.readline()
        if not header:
            break
        if not header.strip():
            continue
        try:
            topic, partition, offset, klen, vlen = header.decode().split()
            klen, vlen = int(klen), int(vlen)
        except ValueError:
            sys.exit(f"handoff_decode: bad header line {header!r}: run kcat with "
                     "-f '%t %p %o %K %S\\n%k%s'")
        key = src.read(klen) if klen > 0 else b""
        value = src.read(vlen) if vlen > 0 else b""
        where = {"topic": topic, "partition": int(partition), "offset": int(offset),
                 "key": key.decode("utf-8", "replace") if klen >= 0 else None}
        try:
            rec = decode_value(value, schemas)
        except (ValueError, Truncated, UnicodeDecodeError) as e:
            rec, status = {"type": "error", "error": str(e)}, 1
            print(f"handoff_decode: {topic} [{partition}] @{offset}: {e}", file=sys.stderr)
        rec.update(where)
        out.write(json.dumps(rec) + "\n")
        out.flush()  # one line per hand-off, as it arrives
    sys.exit(status)


if __name__ == "__main__":
    main()
