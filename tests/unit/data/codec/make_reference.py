#!/usr/bin/env python3
"""Regenerates the reference canonical forms and fingerprints of schemas/*.avsc with fastavro,
an implementation independent of ours (pip install fastavro). The codec tests compare against
these files; run this after a deliberate schema change and review the diff."""
import json
import os
import struct

from fastavro.schema import fingerprint, to_parsing_canonical_form

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "..", "..", "schemas")
NAMES = ["EngagementEvent", "LeadProfileUpdated", "SalesFeedback", "LeadQualified", "LeadStale",
         "LeadErased", "AccountQualified", "AccountStale"]

with open(os.path.join(HERE, "fingerprints.txt"), "w") as out:
    out.write("# name  CRC-64-AVRO value (hex)  single-object header bytes (hex)\n")
    for name in NAMES:
        with open(os.path.join(SCHEMAS, name + ".avsc")) as f:
            pcf = to_parsing_canonical_form(json.load(f))
        with open(os.path.join(HERE, name + ".pcf"), "w") as f:
            f.write(pcf)
        le = fingerprint(pcf, "CRC-64-AVRO")  # fastavro prints the little-endian bytes
        value = struct.unpack("<Q", bytes.fromhex(le))[0]
        out.write(f"{name} {value:016x} c301{le}\n")
