"""`docdb-connector sync` end to end against docdb-emu with TLS and SCRAM-SHA-1: the seed's
scenario, incremental runs, ties across checkpoints and kills, documents without the cursor
field, every BSON type, type changes, hostile names, bad configurations, wrong credentials,
TLS trust, and dropped connections. Rows are checked in SQLite against the source documents."""
import datetime
import json
import os
import time
import unittest
import uuid

import bson
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from connector import (PASSWORD, Workdir, assert_table_equals, client, config, id_text, kill,
                       start_emu)

UTC = datetime.timezone.utc


def ts(s):
    return datetime.datetime.fromisoformat(s).replace(tzinfo=UTC)


SEED_USERS = [
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f601234567"), "name": "Ada Lovelace",
     "email": "ada@example.com", "status": "active",
     "created_at": ts("2024-05-01T10:00:00.123"), "updated_at": ts("2024-05-01T10:00:00.123"),
     "metadata": {"signup_source": "web", "tags": ["vip", "beta"], "score": 99.99,
                  "referrer": bson.ObjectId("65f1a1b2c3d4e5f601234568"),
                  "last_login": ts("2024-05-02T08:30:00.5")}},
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f601234568"), "name": "Grace Hopper",
     "email": "grace@example.com", "status": "inactive",
     "created_at": ts("2024-05-01T11:00:00"), "updated_at": ts("2024-05-03T12:00:00"),
     "metadata": {"signup_source": "ios", "tags": []}},
]
SEED_ORDERS = [
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f6012345a0"), "user_id": SEED_USERS[0]["_id"],
     "order_number": "ORD-1001", "total_amount": 99.99, "status": "shipped",
     "items": [{"product": "keyboard", "quantity": 1, "price": 79.99},
               {"product": "cable", "quantity": 2, "price": 10.0}],
     "created_at": ts("2024-05-02T09:00:00"), "updated_at": ts("2024-05-02T09:30:00.001")},
    {"_id": bson.ObjectId("65f1a1b2c3d4e5f6012345a1"), "user_id": SEED_USERS[1]["_id"],
     "order_number": "ORD-1002", "total_amount": 0.1, "status": "placed",
     "items": [{"product": "dock", "quantity": 1, "price": Decimal128("149.90")}],
     "created_at": ts("2024-05-03T09:00:00"), "updated_at": ts("2024-05-03T09:00:00")},
]


class TestSync(unittest.TestCase):
    def setUp(self):
        self.emu = start_emu("--cursor-timeout", "5")
        self.addCleanup(lambda: self.assertEqual(self.emu.stop(), 0, "docdb-emu did not stop cleanly"))
        self.client = client(self.emu)
        self.addCleanup(self.client.close)
        self.db = self.client.get_database("app", codec_options=CodecOptions(tz_aware=True))

    def work(self, **over):
        w = Workdir(config(self.emu, **over))
        self.addCleanup(w.cleanup)
        return w

    def synced(self, w, *args):
        r = w.sync(*args)
        self.assertEqual(r.returncode, 0, "sync failed:\n" + r.stdout + r.stderr)
        self.assertIn("Sync SUCCEEDED", r.stdout)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        return r

    def upserts(self, r):
        for line in r.stdout.splitlines():
            if line.startswith("Upserts"):
                return int(line.split("|")[1])
        self.fail("no Upserts line in:\n" + r.stdout)

    def test_seed_scenario(self):
        self.db.users.insert_many(SEED_USERS)
        self.db.orders.insert_many(SEED_ORDERS)
        w = self.work()
        r = self.synced(w)
        # 4 documents, and the one holding each collection's highest updated_at once more: the
        # incremental read after a full read starts at that value, ties included.
        self.assertEqual(self.upserts(r), 6)
        assert_table_equals(self, w, "users", SEED_USERS)
        assert_table_equals(self, w, "orders", SEED_ORDERS)
        # The seed wrote items into a stray metadata column on orders; we do not.
        cols = [c[1] for c in w.query('PRAGMA table_info("orders")')]
        self.assertNotIn("metadata", cols)
        # Exact types: a REAL 99.99 (not a 32-bit float), dates in UTC with milliseconds.
        self.assertEqual(w.query('SELECT total_amount, typeof(total_amount) FROM orders '
                                 'WHERE order_number = ?', "ORD-1001"), [(99.99, "real")])
        self.assertEqual(w.query("SELECT updated_at FROM users WHERE name = 'Ada Lovelace'"),
                         [("2024-05-01T10:00:00.123Z",)])
        meta = json.loads(w.query("SELECT metadata FROM users WHERE name = 'Ada Lovelace'")[0][0])
        self.assertEqual(meta["referrer"], "65f1a1b2c3d4e5f601234568")
        self.assertEqual(meta["last_login"], "2024-05-02T08:30:00.500Z")
        items = json.loads(w.query("SELECT items FROM orders WHERE order_number = 'ORD-1002'")[0][0])
        self.assertEqual(items[0]["price"], "149.90")
        state = w.state()
        self.assertEqual(state["version"], 1)
        self.assertEqual(state["tables"]["users"]["phase"], "incremental")

        # A second run after two updates and an insert picks up exactly those three.
        before = {r["_id"]: r["_fivetran_synced"] for r in w.rows("users")}
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
        r = self.synced(w)
        self.assertEqual(self.upserts(r), 3)
        assert_table_equals(self, w, "users", list(self.db.users.find()))
        assert_table_equals(self, w, "orders", list(self.db.orders.find()))
        after = {r["_id"]: r["_fivetran_synced"] for r in w.rows("users")}
        self.assertEqual(after[str(SEED_USERS[0]["_id"])], before[str(SEED_USERS[0]["_id"])])
        self.assertNotEqual(after[str(SEED_USERS[1]["_id"])], before[str(SEED_USERS[1]["_id"])])
        # Nothing changed: nothing read.
        self.assertEqual(self.upserts(self.synced(w)), 0)

    def test_seed_state_is_continued(self):
        self.db.users.insert_many(SEED_USERS)
        w = self.work(collections="users")
        os.makedirs(os.path.dirname(w.state_path))
        with open(w.state_path, "w") as f:
            json.dump({"users_last_updated_at": "2024-05-03T12:00:00+00:00"}, f)
        r = self.synced(w)
        # The seed's cursor is continued (>=, so the tie at the cursor is read again).
        self.assertEqual(self.upserts(r), 1)
        self.assertEqual([r["name"] for r in w.rows("users")], ["Grace Hopper"])

    def test_state_file_behind_the_warehouse(self):
        """The warehouse keeps the state committed with its rows; a state file of the same
        lineage that lags behind (written at most once a second, or lost to a crash between
        the two) is overtaken by it, while another lineage or no state file at all wins."""
        self.db.users.insert_many(SEED_USERS)
        self.db.orders.insert_many(SEED_ORDERS)
        w = self.work()
        self.synced(w)
        with open(w.state_path) as f:
            old = f.read()
        first = json.loads(old)
        self.assertRegex(first["lineage"], "^[0-9a-f]{32}$")
        stored = json.loads(w.query("SELECT state FROM _docdb_connector_state")[0][0])
        self.assertEqual(stored, first)
        self.db.users.update_one({"_id": SEED_USERS[0]["_id"]},
                                 {"$set": {"updated_at": ts("2024-07-01T00:00:00")}})
        self.assertEqual(self.upserts(self.synced(w)), 1)
        self.assertGreater(w.state()["checkpoint"], first["checkpoint"])

        # An older state file of the same lineage: the warehouse's state wins, nothing is read.
        with open(w.state_path, "w") as f:
            f.write(old)
        r = self.synced(w)
        self.assertIn("continuing from the warehouse's checkpoint", r.stdout + r.stderr)
        self.assertEqual(self.upserts(r), 0)

        # Another lineage: the file says where to resume, the change is read again.
        other = dict(first, lineage="0" * 32)
        with open(w.state_path, "w") as f:
            json.dump(other, f)
        r = self.synced(w)
        self.assertNotIn("continuing from the warehouse's checkpoint", r.stdout + r.stderr)
        self.assertEqual(self.upserts(r), 1)  # the change, once more
        self.assertEqual(w.state()["lineage"], "0" * 32)

        # No state file (a reset): a full read, the warehouse's state is not used.
        os.unlink(w.state_path)
        r = self.synced(w)
        self.assertEqual(self.upserts(r), 6)
        self.assertNotEqual(w.state()["lineage"], "0" * 32)
        assert_table_equals(self, w, "users", list(self.db.users.find()))

        # A stored state this version cannot read is reported, and the file is used.
        with open(w.state_path) as f:
            current = f.read()
        con = __import__("sqlite3").connect(w.db_path)
        con.execute("UPDATE _docdb_connector_state SET state = '{\"version\": 99}'")
        con.commit()
        con.close()
        r = self.synced(w)
        self.assertIn("version 99", r.stdout + r.stderr)
        self.assertEqual(self.upserts(r), 0)
        self.assertNotEqual(w.state(), json.loads(current))  # one checkpoint further

    def test_ties_across_checkpoints_and_kill(self):
        same = ts("2024-07-01T00:00:00")
        docs = [{"_id": i, "n": i, "updated_at": same} for i in range(100)]
        self.db.ties.insert_many(docs)
        w = self.work(collections="ties", checkpoint_interval="10", batch_size="10")
        self.synced(w)
        # Thirty more changes share one new cursor value; the sync is killed mid-run.
        later = ts("2024-07-02T00:00:00")
        for i in range(100, 130):
            self.db.ties.insert_one({"_id": i, "n": i, "updated_at": later})
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": {"skip": 1},
                                   "data": {"failCommands": ["getMore"], "blockConnection": True,
                                            "blockTimeMS": 3000}})
        p = w.start_sync()
        deadline = time.time() + 20
        while time.time() < deadline:
            st = w.state()["tables"]["ties"]
            if st.get("cursor", {}).get("$date", "").startswith("2024-07-02"):
                break
            time.sleep(0.02)
        kill(p)
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        st = w.state()["tables"]["ties"]
        self.assertEqual(st["cursor"]["$date"], "2024-07-02T00:00:00Z")
        self.assertIn("cursor_id", st)  # the checkpoint is inside the run of ties
        self.assertLess(st["cursor_id"], 129)
        self.synced(w)
        assert_table_equals(self, w, "ties", list(self.db.ties.find()))

    def test_documents_without_cursor_field(self):
        docs = [{"_id": 1, "updated_at": ts("2024-01-01T00:00:00")},
                {"_id": 2},
                {"_id": 3, "updated_at": "2024-01-01"},
                {"_id": 4, "updated_at": None}]
        self.db.loose.insert_many(docs)
        w = self.work(collections="loose")
        r = self.synced(w)
        self.assertEqual(len(w.rows("loose")), 4)
        self.assertIn("3 documents have no date in 'updated_at'", r.stderr)
        r = self.synced(w)
        self.assertEqual(self.upserts(r), 0)
        self.assertIn("3 documents have no date in 'updated_at'", r.stderr)

        # Undated documents inserted later arrive too (their _id comes after the last one
        # seen, whatever its type), and a dated insert moves that mark on.
        self.db.loose.insert_many([{"_id": 5}, {"_id": 6, "updated_at": "soon"},
                                   {"_id": 7, "updated_at": ts("2024-02-01T00:00:00")},
                                   {"_id": "a string sorts after numbers"},
                                   {"_id": bson.ObjectId(), "updated_at": 12}])
        r = self.synced(w)
        self.assertEqual(self.upserts(r), 5)
        self.assertIn("7 documents have no date in 'updated_at'", r.stderr)
        self.assertEqual(sorted(r["_id"] for r in w.rows("loose")),
                         sorted(id_text(d["_id"]) for d in self.db.loose.find()))
        self.assertEqual(self.upserts(self.synced(w)), 0)
        state = w.state()["tables"]["loose"]
        self.assertEqual(state["undated"], 7)
        self.assertIn("$oid", state["max_id"])

        # A state without the mark (an older version's, or the seed's): every undated
        # document is read once, then the mark is back.
        del state["max_id"], state["undated"]
        full = w.state()
        full["tables"]["loose"] = state
        full["checkpoint"] += 1000  # ahead of the warehouse's copy: the file is used
        with open(w.state_path, "w") as f:
            json.dump(full, f)
        r = self.synced(w)
        self.assertEqual(self.upserts(r), 7)
        self.assertEqual(w.state()["tables"]["loose"]["undated"], 7)
        self.assertIn("max_id", w.state()["tables"]["loose"])
        self.assertEqual(self.upserts(self.synced(w)), 0)

    def test_every_bson_type(self):
        doc = {"_id": bson.ObjectId(), "s": "text ünïcode ✓", "i32": 42, "i64": Int64(2**53 + 1),
               "dbl": 0.1, "big": 1e308, "dec": Decimal128("1234567890.123456789012345678"),
               "t": True, "f": False, "d": ts("1969-12-31T23:59:59.999"),
               "oid": bson.ObjectId("65f1a1b2c3d4e5f601234567"), "bin": b"\x00\x01\xfe\xff",
               "uuid": bson.Binary(uuid.UUID(int=1).bytes, 4), "nul": None,
               "obj": {"a": {"b": [1, 2.5, "x", None, True]}, "when": ts("2024-01-01T00:00:00"),
                       "oid": bson.ObjectId("65f1a1b2c3d4e5f601234567"),
                       "dec": Decimal128("0.10"), "bytes": b"hi"},
               "arr": [bson.ObjectId("65f1a1b2c3d4e5f601234567"), ts("2024-01-01T00:00:00.5")],
               "tstamp": bson.Timestamp(1700000000, 7), "regex": bson.Regex("^a.*", "i"),
               "code": bson.Code("function() {}"), "minkey": bson.MinKey(),
               "maxkey": bson.MaxKey(), "nan": float("nan")}
        self.db.types.insert_one(doc)
        w = self.work(collections="types")
        self.synced(w)
        row = w.rows("types")[0]
        kinds = dict(w.query("SELECT 's', typeof(s) FROM types") +
                     w.query("SELECT 'i64', typeof(i64) FROM types") +
                     w.query("SELECT 'dbl', typeof(dbl) FROM types") +
                     w.query("SELECT 'dec', typeof(dec) FROM types") +
                     w.query("SELECT 'bin', typeof(bin) FROM types"))
        self.assertEqual(kinds, {"s": "text", "i64": "integer", "dbl": "real", "dec": "text",
                                 "bin": "blob"})
        self.assertEqual(row["s"], "text ünïcode ✓")
        self.assertEqual(row["i32"], 42)
        self.assertEqual(row["i64"], 2**53 + 1)
        self.assertEqual(row["dbl"], 0.1)
        self.assertEqual(row["big"], 1e308)
        self.assertEqual(row["dec"], "1234567890.123456789012345678")
        self.assertEqual((row["t"], row["f"]), (1, 0))
        self.assertEqual(row["d"], "1969-12-31T23:59:59.999Z")
        self.assertEqual(row["oid"], "65f1a1b2c3d4e5f601234567")
        self.assertEqual(row["bin"], b"\x00\x01\xfe\xff")
        self.assertEqual(row["uuid"], uuid.UUID(int=1).bytes)
        self.assertNotIn("nul", row)  # a column is created by its first non-null value
        self.assertEqual(json.loads(row["obj"]),
                         {"a": {"b": [1, 2.5, "x", None, True]}, "when": "2024-01-01T00:00:00.000Z",
                          "oid": "65f1a1b2c3d4e5f601234567", "dec": "0.10", "bytes": "aGk="})
        self.assertEqual(row["obj"][:8], '{"a":{"b')  # keys in document order, compact
        self.assertEqual(json.loads(row["arr"]),
                         ["65f1a1b2c3d4e5f601234567", "2024-01-01T00:00:00.500Z"])
        self.assertEqual(json.loads(row["tstamp"]), {"t": 1700000000, "i": 7})
        self.assertEqual(json.loads(row["regex"]), {"pattern": "^a.*", "options": "i"})
        self.assertEqual(row["code"], "function() {}")
        self.assertEqual(json.loads(row["minkey"]), {"$minKey": 1})
        self.assertEqual(json.loads(row["maxkey"]), {"$maxKey": 1})
        self.assertIsNone(row["nan"])  # SQLite has no NaN: it stores NULL (docs/destinations.md)

    def test_field_changes_type(self):
        self.db.mixed.insert_many([{"_id": 1, "v": 1, "n": 1}, {"_id": 2, "v": "x", "n": Int64(5)},
                                   {"_id": 3, "v": {"a": 1}, "n": 2.5}])
        w = self.work(collections="mixed")
        self.synced(w)
        rows = {r["_id"]: r for r in w.rows("mixed")}
        self.assertEqual([rows[k]["v"] for k in ("1", "2", "3")], ["1", '"x"', '{"a":1}'])
        # int, long and double: kept exactly as DECIMAL text.
        self.assertEqual([rows[k]["n"] for k in ("1", "2", "3")], ["1", "5", "2.5"])
        # A later run widening an existing column migrates the rows already there.
        self.db.mixed2.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 2}])
        w2 = self.work(collections="mixed2")
        self.synced(w2)
        self.db.mixed2.insert_one({"_id": 3, "v": 1.5, "updated_at": datetime.datetime.now(UTC)})
        self.db.mixed2.update_one({"_id": 1}, {"$set": {"updated_at": datetime.datetime.now(UTC)}})
        self.synced(w2)
        self.assertEqual(w2.query("SELECT _id, v, typeof(v) FROM mixed2 ORDER BY _id"),
                         [("1", 1.0, "real"), ("2", 2.0, "real"), ("3", 1.5, "real")])

    def test_hostile_names(self):
        names = ['we"ird.coll name', "order", "café Ünïcode", "CamelCaseColl"]
        for n in names:
            # The insert command itself: pymongo's helpers refuse dotted keys client-side.
            self.db.command({"insert": n, "documents": [
                {"_id": 1, "order": 1, "select": "x", "with space": True, "dotted.name": 2,
                 "ünï": "u", "camelCase": 3, 'quote"d': 4}]})
        w = self.work()
        self.synced(w, "--naming", "source")
        for n in names:
            row = w.rows(n)[0]
            self.assertEqual((row["order"], row["select"], row["with space"], row["dotted.name"],
                              row["ünï"], row["camelCase"], row['quote"d']),
                             (1, "x", 1, 2, "u", 3, 4))
        w2 = self.work()
        self.synced(w2)  # Fivetran naming
        tables = {r[0] for r in w2.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for t in ("we_ird_coll_name", "order", "cafe_unicode", "camel_case_coll"):
            self.assertIn(t, tables)
        row = w2.rows("camel_case_coll")[0]
        self.assertEqual((row["order"], row["select"], row["with_space"], row["dotted_name"],
                          row["uni"], row["camel_case"], row["quote_d"]), (1, "x", 1, 2, "u", 3, 4))

    def test_bad_configurations(self):
        cases = [
            ({"hostname": None}, "hostname"),
            ({"password": ""}, "password"),
            ({"port": "0"}, "port"),
            ({"port": "65536"}, "port"),
            ({"port": "abc"}, "port"),
            ({"batch_size": "-1"}, "batch_size"),
            ({"tls": "maybe"}, "tls"),
            ({"tls_ca_file": "/nonexistent/ca.pem"}, "tls_ca_file"),
            ({"auth_mechanism": "KERBEROS-ROT13"}, "auth_mechanism"),
            ({"start_date": "yesterday"}, "start_date"),
        ]
        for over, key in cases:
            w = self.work(**over)
            r = w.sync()
            self.assertEqual(r.returncode, 2, "%r: %s" % (over, r.stderr))
            self.assertIn(key, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(w.path, "files")), "files written")
            self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        w = self.work()
        with open(os.path.join(w.path, "configuration.json"), "w") as f:
            f.write('{\n  "hostname": "x",\n  "port": "1",\n}\n')
        r = w.sync()
        self.assertEqual(r.returncode, 2)
        self.assertIn("line", r.stderr)
        # A corrupt state is an error naming it, never a silent reset.
        w = self.work()
        os.makedirs(os.path.join(w.path, "files"))
        with open(w.state_path, "w") as f:
            f.write("{not json")
        r = w.sync()
        self.assertEqual(r.returncode, 2)
        self.assertIn("files/state.json", r.stderr)

    def test_wrong_password(self):
        w = self.work(password="not-" + PASSWORD)
        r = w.sync()
        self.assertEqual(r.returncode, 1)
        self.assertIn("authentication failed", r.stdout + r.stderr)
        self.assertIn("Sync FAILED", r.stdout)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)

    def test_tls_trust(self):
        self.db.users.insert_many(SEED_USERS)
        w = self.work(tls_ca_file=None)  # the system store does not know the test CA
        r = w.sync()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("TLS", r.stdout + r.stderr)
        w = self.work(tls_ca_file=os.path.join(os.environ.get("TEST_CERTS", ""), "other-ca.pem"))
        self.assertEqual(w.sync().returncode, 1)
        self.synced(self.work())

    def test_dropped_connection_and_cursor_not_found(self):
        docs = [{"_id": i, "v": "x" * 100, "updated_at": ts("2024-01-01T00:00:00")}
                for i in range(5000)]
        self.db.flaky.insert_many(docs)
        w = self.work(collections="flaky", batch_size="100", checkpoint_interval="1000")
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 2},
                                   "data": {"failCommands": ["getMore"], "closeConnection": True}})
        r = self.synced(w)
        self.assertIn("retrying", r.stderr)
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        assert_table_equals(self, w, "flaky", docs)
        # CursorNotFound twice during an incremental read: resumed, exact.
        for i in range(0, 5000, 2):
            self.db.flaky.update_one({"_id": i}, {"$set": {"v": "y",
                                                           "updated_at": ts("2024-02-01T00:00:00")}})
        self.client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 2},
                                   "data": {"failCommands": ["getMore"], "errorCode": 43}})
        r = self.synced(w)
        self.assertIn("retrying", r.stderr)
        assert_table_equals(self, w, "flaky", list(self.db.flaky.find()))


if __name__ == "__main__":
    unittest.main()
