"""`docdb-connector serve`: Fivetran's SDK v2 SourceConnector over gRPC, called the way Fivetran
calls it (grpcio, messages generated from src/fivetran/proto by fivetran_client.py) against
docdb-emu with TLS and SCRAM-SHA-1. Covers the listening line, JSON logs and SIGTERM; the
configuration form; Test; Schema; Update's records and every value type, batches, checkpoints,
resuming and incremental updates, selection, warnings and tasks; cancellation, flow control,
concurrent calls, malformed, oversized and gzip-compressed requests; and the same rows as
`sync --naming source` writes into SQLite."""
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest
import uuid

import bson
import grpc
from bson import json_util
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

import fivetran_client as fc
from connector import (CONNECTOR, PASSWORD, Workdir, cert, client, config, id_text,
                       plain_decimal, plain_json, start_emu)
from fivetran_client import pb
from test_sync import SEED_ORDERS, SEED_USERS, ts

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
HERE = os.path.dirname(os.path.abspath(__file__))

# A third user, after the seed's two in _id order, without email, created_at and metadata: its
# record must carry those columns as null.
THIRD_USER = {"_id": bson.ObjectId("65f1a1b2c3d4e5f601234569"), "name": "Edsger Dijkstra",
              "status": "active", "updated_at": ts("2024-05-02T00:00:00")}
USERS = SEED_USERS + [THIRD_USER]

# Every type of the mapping (docs/types.md), then the same fields at their zero values: proto3
# oneof members must be on the wire even when they hold 0, "", false or the epoch.
TYPES = [
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f6012345b0"), "s": "text ünïcode ✓", "i32": 42,
     "i64": Int64(2**53 + 1), "dbl": 0.1, "big": 1e308,
     "dec": Decimal128("1234567890.123456789012345678"), "price": Decimal128("149.90"),
     "t": True, "d": ts("1969-12-31T23:59:59.999"),
     "oid": bson.ObjectId("65f1a1b2c3d4e5f601234567"), "bin": b"\x00\x01\xfe\xff",
     "uuid": Binary(uuid.UUID(int=1).bytes, 4),
     "obj": {"a": {"b": [1, 2.5, "x", None, True]}, "when": ts("2024-01-01T00:00:00"),
             "oid": bson.ObjectId("65f1a1b2c3d4e5f601234567"), "dec": Decimal128("0.10"),
             "bytes": b"hi"},
     "arr": [bson.ObjectId("65f1a1b2c3d4e5f601234567"), ts("2024-01-01T00:00:00.5"),
             Int64(5)],
     "nul": None, "updated_at": ts("2024-05-01T00:00:00")},
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f6012345b1"), "s": "", "i32": 0, "i64": Int64(0),
     "dbl": 0.0, "big": 2.5, "dec": Decimal128("0E-10"), "price": Decimal128("1.50E+3"),
     "t": False, "d": EPOCH, "oid": bson.ObjectId("000000000000000000000000"), "bin": b"",
     "uuid": Binary(bytes(16), 4), "obj": {}, "arr": [], "nul": None,
     "updated_at": ts("2024-05-01T00:00:01")},
]
TYPES_COLUMNS = {"_id": "STRING", "s": "STRING", "i32": "INT", "i64": "LONG", "dbl": "DOUBLE",
                 "big": "DOUBLE", "dec": "DECIMAL", "price": "DECIMAL", "t": "BOOLEAN",
                 "d": "UTC_DATETIME", "oid": "STRING", "bin": "BINARY", "uuid": "BINARY",
                 "obj": "JSON", "arr": "JSON", "updated_at": "UTC_DATETIME"}  # no "nul"
USERS_COLUMNS = {"_id": "STRING", "created_at": "UTC_DATETIME", "updated_at": "UTC_DATETIME",
                 "metadata": "JSON", "name": "STRING", "email": "STRING", "status": "STRING"}
ORDERS_COLUMNS = {"_id": "STRING", "created_at": "UTC_DATETIME", "updated_at": "UTC_DATETIME",
                  "items": "JSON", "user_id": "STRING", "order_number": "STRING",
                  "total_amount": "DOUBLE", "status": "STRING"}

HOSTILE = 'we"ird.coll name'
HOSTILE_DOC = {"_id": 1, "camelCase": 3, "with space": True, "dotted.name": "d", "ünï": "u",
               "updated_at": ts("2024-05-01T00:00:00")}
HOSTILE_COLUMNS = {"_id": "STRING", "camelCase": "INT", "with space": "BOOLEAN",
                   "dotted.name": "STRING", "ünï": "STRING", "updated_at": "UTC_DATETIME"}


def millis(dt):
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1)


def expect(v):
    """The ValueType member and value a top-level BSON value must arrive as, written from
    docs/types.md independently of the C converter."""
    if v is None:
        return ("null", True)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, Int64):
        return ("long", int(v))
    if isinstance(v, int):
        return ("int", v) if -2**31 <= v < 2**31 else ("long", v)
    if isinstance(v, float):
        return ("double", v)
    if isinstance(v, Decimal128):
        return ("decimal", plain_decimal(v))
    if isinstance(v, datetime.datetime):
        ms = millis(v)
        return ("utc_datetime", (ms // 1000, (ms % 1000) * 1000000))
    if isinstance(v, bson.ObjectId):
        return ("string", str(v))
    if isinstance(v, bytes):  # bson.Binary too
        return ("binary", bytes(v))
    if isinstance(v, (dict, list)):
        return ("json", plain_json(v))
    if isinstance(v, str):
        return ("string", v)
    raise TypeError("no expected value for %r" % (v,))


def config_keys():
    """The keys of docs/configuration.md's table, with their types."""
    with open(os.path.join(HERE, "..", "..", "docs", "configuration.md")) as f:
        return dict(re.findall(r"^\| `([a-z_]+)` \| ([a-z]+) \|", f.read(), re.M))


def raw_doc(_id, key, value, updated_at):
    """A BSON document {_id: int32, key: string of raw bytes (not necessarily UTF-8),
    updated_at: date}, which pymongo would refuse to encode from a str."""
    def cstr(s):
        return s + b"\x00"
    body = (b"\x10" + cstr(b"_id") + _id.to_bytes(4, "little", signed=True)
            + b"\x02" + cstr(key) + (len(value) + 1).to_bytes(4, "little") + value + b"\x00"
            + b"\x09" + cstr(b"updated_at") + millis(updated_at).to_bytes(8, "little",
                                                                           signed=True))
    return RawBSONDocument((len(body) + 5).to_bytes(4, "little") + body + b"\x00")


class TestServe(unittest.TestCase):
    def setUp(self):
        self.emu = start_emu()
        self.addCleanup(lambda: self.assertEqual(self.emu.stop(), 0,
                                                 "docdb-emu did not stop cleanly"))
        self.mongo = client(self.emu)
        self.addCleanup(self.mongo.close)
        self.db = self.mongo.get_database("app", codec_options=CodecOptions(tz_aware=True))
        self.server = self.start_server()
        self.rpc = self.server.client()

    # ---- helpers ----

    def start_server(self, **kw):
        s = fc.Serve(**kw)
        self.addCleanup(self.stop_server, s)
        return s

    def stop_server(self, s):
        code = s.stop()
        out = s.output(tail=1000000)
        self.assertEqual(code, 0, "serve did not exit with status 0 on SIGTERM:\n" + out)
        self.assertNotIn(PASSWORD, out, "the password appears in the server's output")
        for line in s.logs()[0]:
            self.assertNotIn(PASSWORD, str(line.get("message")), "a log line holds the password")

    def cfg(self, **over):
        """The configuration map Fivetran would send for this emu (connector.config)."""
        return fc.request_config(config(self.emu, **over))

    def update(self, rpc=None, **kw):
        cfg = kw.pop("cfg", None) or self.cfg()
        call = (rpc or self.rpc).update(cfg, **kw)
        try:
            return fc.collect(call)
        except grpc.RpcError as e:
            self.fail("Update failed with %s: %s\n%s" % (e.code(), e.details(),
                                                          self.server.output()))

    def seed(self):
        self.db.users.insert_many(USERS)
        self.db.orders.insert_many(SEED_ORDERS)

    def assert_well_formed(self, res):
        """A successful Update: Records batches of 1..100 UPSERTs, no single records, no task,
        and a checkpoint last."""
        self.assertTrue(res.events, "the Update streamed nothing")
        self.assertEqual(res.tasks, [], "tasks: " + res.summary())
        self.assertEqual(res.of("record"), [],
                         "records sent one by one in UpdateResponse.record (field 1); "
                         "they belong in Records batches (field 6)")
        self.assertEqual(res.of(None), [], "UpdateResponses without an operation")
        for b in res.batches:
            self.assertTrue(1 <= len(b) <= 100, "a Records batch of %d records" % len(b))
        for r in res.records:
            self.assertEqual(r.type, pb.UPSERT, "%s: record type %d" % (r.table_name, r.type))
        self.assertEqual(res.events[-1][0], "checkpoint",
                         "the last message is not a checkpoint: " + res.summary())
        for s in res.checkpoints:
            st = json.loads(s)
            self.assertEqual((st.get("version"), st.get("connector")), (1, "docdb-connector"),
                             "checkpoint state: " + s)
            self.assertIsInstance(st.get("tables"), dict, s)

    def assert_records_match(self, res, table, docs):
        """Every record of `table` is one of `docs`, value by value (fields a document lacks
        are null); every document has a record."""
        by_id = {id_text(d["_id"]): d for d in docs}
        seen = set()
        for r in res.records:
            if r.table_name != table:
                continue
            data = fc.values(r)
            self.assertIn("_id", data, "a record of %s without _id" % table)
            kind, key = data["_id"]
            self.assertEqual(kind, "string", "%s._id arrives as %s" % (table, kind))
            self.assertIn(key, by_id, "%s: a record for _id %r, not in the source" % (table, key))
            doc = by_id[key]
            for field, v in doc.items():
                if field == "_id" or v is None:
                    continue
                self.assertIn(field, data, "%s.%s missing from the record of %s"
                              % (table, field, key))
                self.assertEqual(data[field], expect(v), "%s.%s of %s" % (table, field, key))
            for col, kv in data.items():
                if col != "_id" and doc.get(col) is None:
                    self.assertEqual(kv, ("null", True), "%s.%s of %s: the document has no "
                                     "value, so the record must carry null" % (table, col, key))
            seen.add(key)
        self.assertEqual(set(by_id) - seen, set(), "documents of %s without a record" % table)

    def schema_tables(self, cfg=None):
        r = self.rpc.schema(cfg or self.cfg())
        self.assertEqual(r.WhichOneof("response"), "without_schema", str(r)[:2000])
        return r, {t.name: t for t in r.without_schema.tables}

    def assert_alive(self, what):
        self.assertTrue(self.server.alive(), "serve died %s:\n%s" % (what, self.server.output()))
        form = self.rpc.configuration_form(timeout=30)
        self.assertTrue(form.fields, "ConfigurationForm after %s" % what)
        res = self.rpc.test("connect", self.cfg(), timeout=60)
        self.assertTrue(res.success, "Test connect after %s: %s" % (what, res.failure))

    # ---- the process ----

    def test_listening_line_json_logs_and_sigterm(self):
        s = self.server
        self.assertEqual(s.host, "127.0.0.1", s.listening_line)
        self.assertGreater(s.port, 0)
        self.assertEqual(json.loads(s.listening_line)["message"], "listening on 127.0.0.1:%d"
                         % s.port)
        self.db.users.insert_many(USERS)
        self.assertTrue(self.rpc.test("connect", self.cfg()).success)
        self.assertFalse(self.rpc.test("connect", self.cfg(password="wrong")).success)
        self.assert_well_formed(self.update())
        # --bind 127.0.0.1 listens there only: another loopback address is refused.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", s.port), timeout=5).close()
        code = s.stop()
        self.assertEqual(code, 0, "exit status on SIGTERM\n" + s.output())
        parsed, bad = s.logs()
        self.assertEqual(bad, [], "stdout lines that are not JSON objects")
        self.assertTrue(parsed)
        for line in parsed:
            self.assertEqual(set(line), {"level", "message", "message-origin"}, line)
            self.assertIn(line["level"], ("INFO", "WARNING", "SEVERE"), line)
            self.assertEqual(line["message-origin"], "sdk_connector", line)
            self.assertIsInstance(line["message"], str, line)
        self.assertNotIn(PASSWORD, s.output(tail=100000))

    def test_sigterm_during_update(self):
        self.big_collection(30000, 1000)
        call = self.rpc.update(self.cfg(collections="big"), timeout=120)
        res = fc.collect(call, limit=1)
        self.assertTrue(res.records, res.summary())
        t0 = time.monotonic()
        code = self.server.stop(timeout=30)
        self.assertEqual(code, 0, "exit status on SIGTERM with an Update streaming\n"
                         + self.server.output())
        self.assertLess(time.monotonic() - t0, 15, "SIGTERM took too long to stop serve")
        # The stream ends with an error, or, if the server ended it cleanly, with a checkpoint.
        try:
            fc.collect(call, res)
        except grpc.RpcError:
            pass
        else:
            self.assert_well_formed(res)

    def test_default_port_all_addresses_and_usage(self):
        if not fc.port_free(50051):
            self.skipTest("port 50051 is in use on this machine")
        s = self.start_server(port=None, bind=None)
        self.assertEqual(s.port, 50051, s.listening_line)
        # ADDR is the wildcard address, or several ("0.0.0.0 and [::]").
        for addr in s.host.split(" and "):
            self.assertIn(addr, ("0.0.0.0", "::", "[::]", "[::0]", "*"), s.listening_line)
        # All addresses: any loopback address reaches it, not just 127.0.0.1.
        for host in ("127.0.0.1", "127.0.0.2"):
            form = s.client("%s:50051" % host).configuration_form(timeout=30)
            self.assertTrue(form.fields, host)
        for args in (["--port", "65536"], ["--port", "abc"], ["--bogus"], ["extra"]):
            r = subprocess.run([CONNECTOR, "serve"] + args, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 2, "serve %s: %s%s" % (args, r.stdout, r.stderr))
        r = subprocess.run([CONNECTOR, "serve", "--help"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: docdb-connector", r.stdout)
        self.assertIn("--port", r.stdout)

    # ---- ConfigurationForm, Test, Schema ----

    def test_configuration_form(self):
        form = self.rpc.configuration_form()
        self.assertFalse(form.schema_selection_supported)
        self.assertTrue(form.table_selection_supported)
        keys = config_keys()
        for k in ("hostname", "port", "username", "password", "database", "uri", "tls",
                  "tls_ca_file", "tls_allow_invalid_certificates", "tls_allow_invalid_hostnames",
                  "auth_mechanism", "auth_source", "replica_set", "read_preference",
                  "direct_connection", "collections", "cursor_field", "start_date",
                  "batch_size", "checkpoint_interval", "cursor_lookback_seconds"):
            self.assertIn(k, keys, "docs/configuration.md no longer lists %s" % k)
        fields = {f.name: f for f in form.fields}
        self.assertEqual(len(fields), len(form.fields), "a field name given twice")
        self.assertEqual(set(fields), set(keys), "form fields vs docs/configuration.md keys")
        for name, f in fields.items():
            self.assertTrue(f.label, "%s has no label" % name)
            kind = f.WhichOneof("type")
            if name in ("password", "uri"):
                self.assertEqual((kind, f.text_field), ("text_field", pb.Password), name)
            elif keys[name] == "boolean":
                self.assertEqual(kind, "toggle_field", name)
            elif keys[name] == "file":
                self.assertEqual(kind, "upload_field", name)
                self.assertIn(".pem", f.upload_field.allowed_file_type, name)
            else:
                self.assertEqual((kind, f.text_field), ("text_field", pb.PlainText), name)
        self.assertEqual(fields["tls_ca_file"].WhichOneof("type"), "upload_field")
        tests = {t.name: t.label for t in form.tests}
        self.assertEqual(set(tests), {"connect", "collections"})
        self.assertEqual(len(form.tests), 2)
        for name, label in tests.items():
            self.assertTrue(label, "test %s has no label" % name)

    def test_test_method(self):
        self.seed()
        for name in ("connect", "collections"):
            r = self.rpc.test(name, self.cfg())
            self.assertEqual(r.WhichOneof("response"), "success", "%s: %s" % (name, r.failure))
            self.assertTrue(r.success)
        r = self.rpc.test("collections", self.cfg(collections="users, orders"))
        self.assertTrue(r.success, r.failure)
        failures = [
            ("connect", {"password": "not-" + PASSWORD}, "authentication failed"),
            ("collections", {"password": "not-" + PASSWORD}, "authentication failed"),
            ("connect", {"tls_ca_file": None}, "TLS"),  # the system store lacks the test CA
            ("connect", {"tls_ca_file": cert("other-ca.pem")}, "TLS"),
            ("collections", {"collections": "users, nope"}, "nope"),
            ("connect", {"port": "abc"}, "port"),
            ("connect", {"hostname": None}, "hostname"),
            ("connect", {"batch_size": "-1"}, "batch_size"),
        ]
        for name, over, text in failures:
            r = self.rpc.test(name, self.cfg(**over))
            self.assertEqual(r.WhichOneof("response"), "failure", "%s with %r" % (name, over))
            self.assertIn(text, r.failure, "%s with %r" % (name, over))
            self.assertNotIn(PASSWORD, r.failure)
        # tls_ca_file arrives base64-encoded; text that is not base64 is a configuration error.
        bad = dict(self.cfg(), tls_ca_file="this is not base64!")
        r = self.rpc.test("connect", bad)
        self.assertEqual(r.WhichOneof("response"), "failure")
        self.assertIn("tls_ca_file", r.failure)
        with self.assertRaises(grpc.RpcError) as cm:
            self.rpc.test("no-such-test", self.cfg())
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         cm.exception.details())
        self.assert_alive("an unknown test name")

    def test_schema(self):
        self.seed()
        self.db.types.insert_many(TYPES)
        self.db.command({"insert": HOSTILE, "documents": [HOSTILE_DOC]})
        self.db.create_collection("empty")
        r, tables = self.schema_tables()
        self.assertTrue(r.HasField("selection_not_supported"),
                        "selection_not_supported must be present (set to false)")
        self.assertFalse(r.selection_not_supported)
        self.assertEqual(len(tables), len(r.without_schema.tables), "a table listed twice")
        self.assertEqual(set(tables), {"users", "orders", "types", HOSTILE, "empty"})
        expected = {"users": USERS_COLUMNS, "orders": ORDERS_COLUMNS, "types": TYPES_COLUMNS,
                    HOSTILE: HOSTILE_COLUMNS, "empty": {"_id": "STRING"}}
        for name, t in tables.items():
            cols = {c.name: fc.TYPE_NAMES.get(c.type, c.type) for c in t.columns}
            self.assertEqual(len(cols), len(t.columns), "%s: a column listed twice" % name)
            self.assertEqual(cols, expected[name], name)
            for c in t.columns:
                self.assertEqual(c.primary_key, c.name == "_id", "%s.%s primary_key"
                                 % (name, c.name))
        # Only the configured collections.
        _, tables = self.schema_tables(self.cfg(collections="users"))
        self.assertEqual(set(tables), {"users"})

    # ---- Update ----

    def test_update_records_and_values(self):
        self.seed()
        self.db.types.insert_many(TYPES)
        self.db.command({"insert": HOSTILE, "documents": [HOSTILE_DOC]})
        res = self.update()
        self.assert_well_formed(res)
        self.assertEqual(res.warnings, [], "no document was altered or lacks its cursor")
        self.assertEqual(res.tables(), {"users", "orders", "types", HOSTILE})
        self.assert_records_match(res, "users", USERS)
        self.assert_records_match(res, "orders", SEED_ORDERS)
        self.assert_records_match(res, "types", TYPES)
        self.assert_records_match(res, HOSTILE, [HOSTILE_DOC])
        # The third user's missing fields are there, as nulls (declared and discovered alike).
        third = res.rows("users")[str(THIRD_USER["_id"])]
        for col in ("email", "created_at", "metadata"):
            self.assertEqual(third.get(col), ("null", True), "users.%s of the third user" % col)
        # Every column of the table, as Schema declares it; a column of only nulls is not one.
        _, tables = self.schema_tables()
        for name in ("users", "orders", "types", HOSTILE):
            self.assertEqual(res.columns(name), {c.name for c in tables[name].columns}, name)
        self.assertNotIn("nul", res.columns("types"))
        # The state: the versioned JSON of files/state.json, every table incremental.
        state = json.loads(res.last_state())
        self.assertEqual(set(state["tables"]), {"users", "orders", "types", HOSTILE})
        for name, t in state["tables"].items():
            self.assertEqual(t["phase"], "incremental", name)
            self.assertEqual(t["cursor_field"], "updated_at", name)
        self.assertEqual(state["tables"]["users"]["cursor"], {"$date": "2024-05-03T12:00:00Z"})
        # No state, an empty one and {} are all a first sync.
        want = {(r.table_name, fc.value(r.data["_id"])[1]) for r in res.records}
        for st in ("", "{}"):
            again = self.update(state_json=st)
            self.assert_well_formed(again)
            self.assertEqual({(r.table_name, fc.value(r.data["_id"])[1])
                              for r in again.records}, want, "state_json %r" % st)

    def test_checkpoints_follow_their_records_and_resume(self):
        base = ts("2024-01-01T00:00:00")
        docs = [{"_id": i, "n": i, "updated_at": base + datetime.timedelta(seconds=i)}
                for i in range(250)]
        self.db.many.insert_many(docs)
        cfg = self.cfg(collections="many", checkpoint_interval="10", batch_size="10")
        res = self.update(cfg=cfg)
        self.assert_well_formed(res)
        self.assert_records_match(res, "many", docs)
        self.assertGreater(len(res.batches), 2, "250 records in %d batches" % len(res.batches))
        self.assertGreaterEqual(len(res.checkpoints), 25,
                                "checkpoint_interval 10 over 250 records")
        # Each checkpoint's position is a document already streamed before it.
        sent = set()
        mid = None
        for kind, payload in res.events:
            if kind == "records":
                sent.update(fc.value(r.data["_id"])[1] for r in payload)
            elif kind == "checkpoint":
                t = json_util.loads(payload)["tables"]["many"]
                pos = t.get("last_id") if t["phase"] == "snapshot" else t.get("cursor_id")
                if pos is not None:
                    self.assertIn(id_text(pos), sent,
                                  "a checkpoint at _id %r, before that record: %s"
                                  % (pos, payload))
                if t["phase"] == "snapshot" and mid is None and 100 <= len(sent) <= 150:
                    mid = (set(sent), payload)
        self.assertIsNotNone(mid, "no snapshot checkpoint between the 100th and the 150th record")
        # Resuming from a checkpoint in the middle reads the rest, and not everything again.
        before, state = mid
        rest = self.update(cfg=cfg, state_json=state)
        self.assert_well_formed(rest)
        self.assert_records_match(rest, "many", [d for d in docs
                                                 if id_text(d["_id"]) in set(rest.ids("many"))])
        self.assertEqual(before | set(rest.ids("many")), {str(i) for i in range(250)},
                         "documents lost between a checkpoint and the resumed Update")
        self.assertLess(len(set(rest.ids("many"))), 250, "the resumed Update read everything")
        self.assertEqual(len(self.update(cfg=cfg, state_json=rest.last_state()).records), 0)

    def test_incremental_update(self):
        self.seed()
        first = self.update()
        self.assert_well_formed(first)
        self.db.users.update_one({"_id": SEED_USERS[1]["_id"]},
                                 {"$set": {"status": "active",
                                           "updated_at": ts("2024-06-01T00:00:00")}})
        self.db.orders.update_one({"_id": SEED_ORDERS[0]["_id"]},
                                  {"$set": {"status": "delivered",
                                            "updated_at": ts("2024-06-01T00:00:01")}})
        new_user = {"_id": bson.ObjectId(), "name": "Alan Turing", "email": "alan@example.com",
                    "created_at": ts("2024-06-02T00:00:00"),
                    "updated_at": ts("2024-06-02T00:00:00")}
        self.db.users.insert_one(new_user)
        second = self.update(state_json=first.last_state())
        self.assert_well_formed(second)
        got = sorted((r.table_name, fc.value(r.data["_id"])[1]) for r in second.records)
        self.assertEqual(got, sorted([("users", str(SEED_USERS[1]["_id"])),
                                      ("users", str(new_user["_id"])),
                                      ("orders", str(SEED_ORDERS[0]["_id"]))]),
                         "the second Update must send exactly the three changed documents")
        changed_users = list(self.db.users.find({"_id": {"$in": [SEED_USERS[1]["_id"],
                                                                 new_user["_id"]]}}))
        self.assert_records_match(second, "users", changed_users)
        self.assert_records_match(second, "orders",
                                  list(self.db.orders.find({"_id": SEED_ORDERS[0]["_id"]})))
        state = json.loads(second.last_state())
        self.assertEqual(state["tables"]["users"]["cursor"], {"$date": "2024-06-02T00:00:00Z"})
        # Nothing changed since: no records, and still a checkpoint to end with.
        third = self.update(state_json=second.last_state())
        self.assert_well_formed(third)
        self.assertEqual(third.records, [])

    def test_selection(self):
        self.seed()
        self.db.extra.insert_many([{"_id": 1, "x": "a", "updated_at": ts("2024-01-01T00:00:00")},
                                   {"_id": 2, "x": "b", "updated_at": ts("2024-01-02T00:00:00")}])
        # A column excluded, an unlisted column kept, a table excluded, a new table left out.
        sel = fc.selection([fc.table_selection("users", columns={"email": False, "name": True},
                                               include_new_columns=True),
                            fc.table_selection("orders", included=False)],
                           include_new_tables=False)
        res = self.update(selection=sel)
        self.assert_well_formed(res)
        self.assertEqual(res.tables(), {"users"})
        self.assertEqual(set(res.ids("users")), {str(u["_id"]) for u in USERS})
        self.assertNotIn("email", res.columns("users"), "an excluded column was sent")
        for r in res.records:
            self.assertNotIn("email", r.data)
        self.assertEqual(res.columns("users"), set(USERS_COLUMNS) - {"email"})
        self.assert_records_match(res, "users", [{k: v for k, v in u.items() if k != "email"}
                                                 for u in USERS])
        # Only the listed columns; an unlisted table follows include_new_tables.
        sel = fc.selection([fc.table_selection("users", columns={"_id": True, "name": True,
                                                                 "status": False},
                                               include_new_columns=False),
                            fc.table_selection("extra", included=False)],
                           include_new_tables=True)
        res = self.update(selection=sel)
        self.assert_well_formed(res)
        self.assertEqual(res.tables(), {"users", "orders"})
        for r in res.records:
            if r.table_name == "users":
                self.assertEqual(set(r.data), {"_id", "name"})
        self.assert_records_match(res, "orders", SEED_ORDERS)
        self.assertEqual(res.columns("orders"), set(ORDERS_COLUMNS))

    def test_warnings(self):
        when = ts("2024-03-01T00:00:00")
        self.db.clean.insert_many([{"_id": 1, "s": "fine", "updated_at": when},
                                   {"_id": 2, "s": "also fine", "updated_at": when}])
        self.db.mangled.insert_one(raw_doc(1, b"s", b"a\xffb", when))
        # (No dated document in undated: a date after a string would widen the column to JSON.)
        self.db.undated.insert_many([{"_id": 1, "s": "no cursor"},
                                     {"_id": 2, "s": "text cursor", "updated_at": "2024-01-01"}])
        res = self.update()
        self.assert_well_formed(res)
        self.assertTrue(any("mangled" in w for w in res.warnings),
                        "no warning about the repaired UTF-8 of mangled: %r" % res.warnings)
        self.assertTrue(any("undated" in w and "updated_at" in w for w in res.warnings),
                        "no warning about undated's documents without a date in updated_at: %r"
                        % res.warnings)
        self.assertFalse(any("clean" in w for w in res.warnings), res.warnings)
        self.assertEqual(fc.values(res.records[[r.table_name for r in res.records]
                                               .index("mangled")])["s"], ("string", "a\ufffdb"))
        # Documents invisible to incremental reads were still sent by the first full read.
        self.assertEqual(set(res.ids("undated")), {"1", "2"})
        self.assertEqual(res.rows("undated")["2"]["updated_at"], ("string", "2024-01-01"))
        self.assertEqual(set(res.ids("clean")), {"1", "2"})

    def test_tasks_for_what_only_the_user_can_fix(self):
        self.seed()
        cases = [({"password": "not-" + PASSWORD}, "authentication failed"),
                 ({"tls_ca_file": None}, "TLS"),
                 ({"tls_ca_file": cert("other-ca.pem")}, "TLS"),
                 ({"port": "abc"}, "port"),
                 ({"batch_size": "0"}, "batch_size"),
                 ({"start_date": "yesterday"}, "start_date"),
                 ({"collections": "users, nope"}, "nope")]
        for over, text in cases:
            call = self.rpc.update(self.cfg(**over), timeout=60)
            try:
                res = fc.collect(call)
            except grpc.RpcError as e:
                self.fail("%r: the Update must send a task and end with OK, not %s: %s"
                          % (over, e.code(), e.details()))
            self.assertEqual(len(res.tasks), 1, "%r: %s" % (over, res.summary()))
            self.assertEqual(res.events[-1][0], "task", "%r: the task ends the stream: %s"
                             % (over, res.summary()))
            self.assertIn(text, res.tasks[0], over)
            self.assertNotIn(PASSWORD, res.tasks[0])
            self.assertEqual(res.records, [], over)
            self.assertEqual(res.checkpoints, [], over)
        self.assert_alive("tasks")

    # ---- the transport ----

    def big_collection(self, n, pad):
        when = ts("2024-01-01T00:00:00")
        for i in range(0, n, 20000):
            self.db.big.insert_many([{"_id": j, "pad": "x" * pad, "updated_at": when}
                                     for j in range(i, min(n, i + 20000))])

    def test_cancel_mid_stream(self):
        self.big_collection(50000, 1000)
        self.seed()
        call = self.rpc.update(self.cfg(collections="big"), timeout=120)
        res = fc.collect(call, limit=2)
        self.assertTrue(res.records, "no records before the cancel: " + res.summary())
        call.cancel()
        with self.assertRaises(grpc.RpcError) as cm:
            fc.collect(call, res)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
        self.assertLess(len(res.records), 50000)
        # The Update stops: the server soon uses (almost) no CPU.
        time.sleep(1.5)
        cpu0 = self.server.cpu_seconds()
        time.sleep(2)
        spent = self.server.cpu_seconds() - cpu0
        self.assertLess(spent, 0.5, "serve used %.2f s of CPU in the 2 s after the cancel"
                        % spent)
        self.assert_alive("a cancelled Update")
        res = self.update(cfg=self.cfg(collections="users"))
        self.assert_well_formed(res)
        self.assert_records_match(res, "users", USERS)

    def test_stalled_client_bounded_memory(self):
        n = 200000
        self.big_collection(n, 600)  # ~130 MB of records, were they all held in memory
        self.db.users.insert_many(USERS)
        # Without BDP probing the client keeps gRPC's 64 KiB window: what the server may
        # legitimately have sent before it has to wait is small.
        rpc = self.server.client(options=[("grpc.http2.bdp_probe", 0)])
        # A first Update warms the server up (connections, TLS, threads); then the baseline.
        self.assert_well_formed(self.update(rpc=rpc, cfg=self.cfg(collections="users")))
        rss0 = self.server.rss_kib()
        call = rpc.update(self.cfg(collections="big", batch_size="1000"), timeout=120)
        res = fc.collect(call, limit=1)
        first = self.server.rss_kib()
        samples = []
        end = time.monotonic() + 4
        while time.monotonic() < end:
            samples.append(self.server.rss_kib())
            time.sleep(0.1)
        half = len(samples) // 2
        early, late = max(samples[:half]), max(samples[half:])
        grown = (max(early, late) - rss0) / 1024
        self.assertLess(grown, 64, "serve's RSS grew by %.0f MiB (%d KiB before the Update, %d "
                        "at its first message, %d at most while the client read nothing)"
                        % (grown, rss0, first, max(early, late)))
        self.assertLess((late - early) / 1024, 16, "serve's RSS still growing while the client "
                        "read nothing: %d KiB in the first 2 s, %d in the next" % (early, late))
        # It was waiting, not stuck: the stream goes on when the client reads again.
        fc.collect(call, res, limit=20)
        self.assertGreater(len(res.records), 100)
        self.assertLess(len(res.records), n)
        call.cancel()
        self.assert_alive("a stalled then cancelled Update")

    def test_concurrent_calls(self):
        self.seed()
        self.big_collection(30000, 1000)
        cfg = self.cfg()
        call = self.rpc.update(self.cfg(collections="big"), timeout=120)
        big = fc.collect(call, limit=1)
        # While that Update streams (its client not reading), other calls are served.
        tests = [self.rpc.method("Test").future(pb.TestRequest(name=n, configuration=cfg),
                                                timeout=30)
                 for n in ("connect", "collections", "connect", "collections")]
        form = self.rpc.configuration_form(timeout=30)
        self.assertTrue(form.fields)
        _, tables = self.schema_tables()
        self.assertIn("big", tables)
        other = self.server.client(options=[("grpc.use_local_subchannel_pool", 1)])
        small = [None, None]

        def run(i):
            try:
                small[i] = fc.collect(other.update(self.cfg(collections="users, orders"),
                                                   timeout=60))
            except grpc.RpcError as e:
                small[i] = "%s %s" % (e.code(), e.details())
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for i, t in enumerate(threads):
            self.assertFalse(t.is_alive(), "concurrent Update %d did not finish" % i)
            self.assertIsInstance(small[i], fc.UpdateResult,
                                  "concurrent Update %d failed: %s" % (i, small[i]))
            self.assert_well_formed(small[i])
            self.assert_records_match(small[i], "users", USERS)
            self.assert_records_match(small[i], "orders", SEED_ORDERS)
        for f in tests:
            self.assertTrue(f.result().success, f.result().failure)
        # The first Update then completes, whole.
        try:
            fc.collect(call, big)
        except grpc.RpcError as e:
            self.fail("the stalled Update failed: %s %s" % (e.code(), e.details()))
        self.assert_well_formed(big)
        self.assertEqual(set(big.ids("big")), {str(i) for i in range(30000)})

    def test_malformed_requests(self):
        garbage = [b"\xff" * 11,           # a tag varint longer than 10 bytes
                   b"\x0a\x05ab",          # a string field cut short
                   b"\x0f\x00",            # wire type 7 (there is none)
                   b"\x0a\xff\xff\xff\xff\x0f"]  # a length beyond the message
        problems = []
        for name in ("ConfigurationForm", "Test", "Schema", "Update"):
            m = self.rpc.method(name, raw=True)
            for g in garbage:
                try:
                    r = m(g, timeout=30)
                    if name == "Update":
                        r = fc.collect(r).summary()
                    problems.append("%s %r: answered OK (%s)" % (name, g, str(r)[:60]
                                                                 .replace("\n", " ")))
                except grpc.RpcError as e:
                    if e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED):
                        problems.append("%s %r: %s %s" % (name, g, e.code(), e.details()))
                self.assertTrue(self.server.alive(), "serve died on %s %r:\n%s"
                                % (name, g, self.server.output()))
        self.assertFalse(problems, "malformed requests must get an error status:\n"
                         + "\n".join(problems))
        # No bytes is a valid, empty TestRequest: a test without a name.
        with self.assertRaises(grpc.RpcError) as cm:
            self.rpc.method("Test", raw=True)(b"", timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # An unknown method.
        with self.assertRaises(grpc.RpcError) as cm:
            self.rpc.channel.unary_unary("/%s/Nope" % fc.SERVICE)(b"", timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assert_alive("malformed requests")

    def test_oversized_requests(self):
        # The padding is an unknown field: the request means the same as without it.
        req = pb.TestRequest(name="connect", configuration=self.cfg())
        test = self.rpc.method("Test", raw=True)
        # Above gRPC's default 4 MiB limit: accepted (the SDK's limit is 128 MiB).
        r = test(fc.padded(req, 8 << 20), timeout=60)
        self.assertTrue(r.success, r.failure)
        # Over 128 MiB, a valid request (that would succeed) is refused.
        big = fc.padded(req, fc.MAX_MESSAGE)
        self.assertGreater(len(big), fc.MAX_MESSAGE)
        with self.assertRaises(grpc.RpcError) as cm:
            test(big, timeout=60)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         cm.exception.details())
        del big
        self.assert_alive("an oversized request")

    def test_gzip_compressed_requests(self):
        self.seed()
        proxy = fc.Proxy(("127.0.0.1", self.server.port))
        self.addCleanup(proxy.close)
        gz = self.server.client("127.0.0.1:%d" % proxy.port, compression=grpc.Compression.Gzip)
        # 1 MiB of padding (an unknown field, skipped by the parser) that gzip shrinks to ~1 KiB.
        req = fc.padded(pb.TestRequest(name="connect", configuration=self.cfg()), 1 << 20,
                        byte=b"a")
        r = gz.method("Test", raw=True)(req, timeout=60)
        self.assertTrue(r.success, r.failure)
        self.assertLess(proxy.up, 256 << 10, "%d bytes sent for a 1 MiB request: was it "
                        "compressed?" % proxy.up)
        self.assertTrue(gz.configuration_form().fields)
        _, tables = self.schema_tables()
        r = gz.schema(self.cfg())
        self.assertEqual({t.name for t in r.without_schema.tables}, set(tables))
        res = fc.collect(gz.update(self.cfg()))
        self.assert_well_formed(res)
        self.assert_records_match(res, "users", USERS)
        # Compression chosen per call, on a plain channel.
        r = self.rpc.method("Test", raw=True)(req, timeout=60, compression=grpc.Compression.Gzip)
        self.assertTrue(r.success, r.failure)
        res = fc.collect(self.rpc.update(self.cfg(), compression=grpc.Compression.Gzip))
        self.assert_well_formed(res)
        self.assert_records_match(res, "orders", SEED_ORDERS)

    # ---- the same rows as sync ----

    def test_same_rows_as_sync(self):
        self.seed()
        self.db.types.insert_many(TYPES)
        self.db.command({"insert": HOSTILE, "documents": [HOSTILE_DOC]})
        w = Workdir(config(self.emu))
        self.addCleanup(w.cleanup)
        r = w.sync("--naming", "source")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        res = self.update()
        self.assert_well_formed(res)
        tables = {t for (t,) in w.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # the sink's own
        tables -= {"_docdb_connector_tables", "_docdb_connector_columns", "_docdb_connector_state"}
        self.assertEqual(res.tables(), tables)
        for table in tables:
            rows = {row["_id"]: row for row in w.rows(table)}
            recs = res.rows(table)
            self.assertEqual(set(recs), set(rows), table)
            cols = set(next(iter(rows.values()))) - {"_fivetran_synced", "_fivetran_deleted"}
            self.assertEqual(res.columns(table), cols, "%s: columns of sync vs serve" % table)
            for key, row in rows.items():
                for col in cols:
                    got = fc.sqlite_value(recs[key].get(col, ("null", True)))
                    self.assertEqual(got, row[col], "%s.%s of %s: serve %r, sync %r"
                                     % (table, col, key, recs[key].get(col), row[col]))
                    if got is not None:
                        self.assertIs(type(got), type(row[col]), "%s.%s of %s" % (table, col,
                                                                                 key))
        # The same state: each continues from the other's.
        # The same positions; `sync` adds its state file's lineage and checkpoint count.
        mirrored = {k: v for k, v in w.state().items() if k not in ("lineage", "checkpoint")}
        self.assertEqual(json.loads(res.last_state()), mirrored)
        self.db.users.update_one({"_id": THIRD_USER["_id"]},
                                 {"$set": {"name": "E. W. Dijkstra",
                                           "updated_at": ts("2024-07-01T00:00:00")}})
        with open(w.state_path) as f:
            inc = self.update(state_json=f.read())
        self.assert_well_formed(inc)
        self.assertEqual([(r.table_name, fc.value(r.data["_id"])[1]) for r in inc.records],
                         [("users", str(THIRD_USER["_id"]))])
        with open(w.state_path, "w") as f:
            f.write(res.last_state())
        r = w.sync("--naming", "source")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^Upserts +\| 1$")
        self.assertEqual(w.rows("users")[2]["name"], "E. W. Dijkstra")


if __name__ == "__main__":
    unittest.main()
