"""The benchmark's `serve` client: one Update against `docdb-connector serve`, counting records
and checkpoints and doing nothing else with them.
Usage: serve_count.py SERVE_PORT CONFIG_JSON"""
import base64
import json
import os
import subprocess
import sys
import tempfile

import grpc

here = os.path.dirname(os.path.abspath(__file__))
proto = os.path.join(here, "..", "src", "fivetran", "proto")
gen = tempfile.mkdtemp(prefix="dc-pb-")
subprocess.run(["protoc", "--python_out=" + gen, "-I", proto, "common.proto",
                "connector_sdk.proto"], check=True)
sys.path.insert(0, gen)
import connector_sdk_pb2 as cs  # noqa: E402


def main():
    port, config_path = sys.argv[1], sys.argv[2]
    with open(config_path) as f:
        cfg = json.load(f)
    if cfg.get("tls_ca_file"):  # an upload field: Fivetran sends the file's content, base64
        with open(cfg["tls_ca_file"], "rb") as f:
            cfg["tls_ca_file"] = base64.b64encode(f.read()).decode()
    channel = grpc.insecure_channel("127.0.0.1:" + port,
                                    options=[("grpc.max_receive_message_length", 1 << 27)])
    # Raw bytes: only the framing is walked (decoding every value in Python would measure
    # Python, not the server).
    update = channel.unary_stream("/fivetran_sdk.v2.SourceConnector/Update",
                                  request_serializer=cs.UpdateRequest.SerializeToString)
    records = checkpoints = 0
    for raw in update(cs.UpdateRequest(configuration=cfg)):
        field, payload = outer(raw)
        if field == 6:
            records += count_entries(payload)
        elif field == 3:
            checkpoints += 1
        elif field == 5:
            raise SystemExit("task: " + cs.UpdateResponse.FromString(raw).task.message)
    print(json.dumps({"records": records, "checkpoints": checkpoints}))


def varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def outer(raw):
    tag, i = varint(raw, 0)
    n, i = varint(raw, i)
    return tag >> 3, memoryview(raw)[i:i + n]


def count_entries(payload):
    i, n, end = 0, 0, len(payload)
    while i < end:
        _, i = varint(payload, i)
        size, i = varint(payload, i)
        i += size
        n += 1
    return n


if __name__ == "__main__":
    main()
