"""docdb-emu driven by pymongo 3.11 (Debian's python3-pymongo): TLS with the test CA,
SCRAM-SHA-1, a wrong password, 100k inserts, filtered and sorted cursors across many
getMores, killCursors, failCommand dropping the connection mid-cursor, cursor expiry and a
client that does not trust the CA."""
import time
import uuid
import unittest

import pymongo
from bson.int64 import Int64
from pymongo import monitoring
from pymongo.errors import (AutoReconnect, CursorNotFound, OperationFailure,
                            ServerSelectionTimeoutError)

from emu import Emu, cert


class GetMoreCounter(monitoring.CommandListener):
    def __init__(self):
        self.getmores = 0

    def started(self, event):
        if event.command_name == "getMore":
            self.getmores += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


class TestEmuPymongo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu(extra=["--cursor-timeout", "2"])

    @classmethod
    def tearDownClass(cls):
        assert cls.emu.stop() == 0, "docdb-emu did not stop cleanly"

    def client(self, password="s3cret", ca="ca.pem", **kw):
        return pymongo.MongoClient(
            "127.0.0.1", self.emu.port, tls=True, tlsCAFile=cert(ca),
            username="alice", password=password, authSource="admin",
            authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=3000, **kw)

    def fill(self, client, name, n):
        coll = client.test[name]
        coll.insert_many([{"_id": i, "i": i, "g": i % 7, "s": "doc-%d" % i}
                          for i in range(n)])
        return coll

    def test_tls_scram_sha1_connect(self):
        with self.client() as c:
            hello = c.admin.command("isMaster")
            self.assertTrue(hello["ismaster"])
            self.assertEqual(hello["maxWireVersion"], 13)
            self.assertNotIn("topologyVersion", hello)
            self.assertIn("test", c.list_database_names() + ["test"])
            self.assertEqual(c.admin.command("ping")["ok"], 1.0)

    def test_default_mechanism_negotiates_sha1(self):
        # Without authMechanism, pymongo asks saslSupportedMechs; DocumentDB offers SHA-1 only.
        with pymongo.MongoClient("127.0.0.1", self.emu.port, tls=True,
                                 tlsCAFile=cert("ca.pem"), username="alice",
                                 password="s3cret", serverSelectionTimeoutMS=3000) as c:
            hello = c.admin.command("isMaster", saslSupportedMechs="admin.alice")
            self.assertEqual(hello["saslSupportedMechs"], ["SCRAM-SHA-1"])
            self.assertEqual(c.test.list_collection_names(), c.test.list_collection_names())

    def test_wrong_password_refused(self):
        with self.client(password="wrong") as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.admin.command("ping")
                c.test.x.find_one()
            self.assertEqual(ctx.exception.code, 18)
            self.assertIn("Authentication failed", str(ctx.exception))

    def test_insert_100k(self):
        with self.client() as c:
            coll = self.fill(c, "big", 100000)
            self.assertEqual(coll.estimated_document_count(), 100000)
            self.assertEqual(coll.find_one({"_id": 77777})["s"], "doc-77777")
            self.assertEqual(len(list(coll.find({"g": 3}, {"_id": 1}))), 14286)
            self.assertEqual(c.test.command("count", "big", query={"g": 3})["n"], 14286)

    def test_find_filter_sort_batches(self):
        counter = GetMoreCounter()
        with self.client(event_listeners=[counter]) as c:
            coll = self.fill(c, "sorted", 100000)
            got = [d["i"] for d in coll.find({"g": 3, "i": {"$gte": 1000}},
                                             sort=[("i", -1)], batch_size=500)]
            want = sorted((i for i in range(1000, 100000) if i % 7 == 3), reverse=True)
            self.assertEqual(got, want)
            self.assertGreaterEqual(counter.getmores, len(want) // 500 - 1)
            # Projection and skip/limit.
            docs = list(coll.find({"i": {"$lt": 10}}, {"s": 1, "_id": 0},
                                  sort=[("i", 1)], skip=2, limit=3))
            self.assertEqual(docs, [{"s": "doc-2"}, {"s": "doc-3"}, {"s": "doc-4"}])

    def test_kill_cursors(self):
        with self.client() as c:
            coll = self.fill(c, "killed", 1000)
            cur = coll.find({}, batch_size=10)
            next(cur)
            cid = cur.cursor_id
            self.assertTrue(cid)
            cur.close()  # killCursors
            time.sleep(0.5)
            with self.assertRaises(OperationFailure) as ctx:
                c.test.command("getMore", Int64(cid), collection="killed")
            self.assertEqual(ctx.exception.code, 43)

    def test_fail_command_closes_connection_mid_cursor(self):
        with self.client() as c, self.client() as admin:
            coll = self.fill(c, "dropped", 1000)
            cur = coll.find({}, batch_size=100, sort=[("_id", 1)])
            first = [next(cur) for _ in range(100)]
            self.assertEqual(len(first), 100)
            admin.admin.command({"configureFailPoint": "failCommand",
                                 "mode": {"times": 1},
                                 "data": {"failCommands": ["getMore"],
                                          "closeConnection": True}})
            with self.assertRaises(AutoReconnect):
                list(cur)
            self.assertEqual(len(list(coll.find({}))), 1000)

    def test_cursor_not_found_after_expiry(self):
        with self.client() as c:
            coll = self.fill(c, "expiring", 100)
            cur = coll.find({}, batch_size=10)
            for _ in range(10):
                next(cur)
            time.sleep(4)  # the server runs with --cursor-timeout 2
            with self.assertRaises(CursorNotFound) as ctx:
                list(cur)
            self.assertEqual(ctx.exception.code, 43)

    def test_untrusted_ca_refused(self):
        with self.client(ca="other-ca.pem") as c:
            with self.assertRaises(ServerSelectionTimeoutError) as ctx:
                c.admin.command("ping")
            self.assertIn("CERTIFICATE_VERIFY_FAILED", str(ctx.exception))

    def test_write_commands(self):
        with self.client() as c:
            coll = c.test.writes
            coll.insert_many([{"_id": i, "n": i} for i in range(10)])
            r = coll.update_many({"n": {"$gte": 5}}, {"$inc": {"n": 100}, "$set": {"big": True}})
            self.assertEqual((r.matched_count, r.modified_count), (5, 5))
            r = coll.update_one({"_id": 42}, {"$set": {"n": 42}}, upsert=True)
            self.assertEqual(r.upserted_id, 42)
            r = coll.replace_one({"_id": 0}, {"n": -1})
            self.assertEqual(r.modified_count, 1)
            self.assertEqual(coll.find_one({"_id": 0}), {"_id": 0, "n": -1})
            self.assertEqual(coll.delete_many({"big": True}).deleted_count, 5)
            self.assertEqual(coll.delete_one({"_id": 42}).deleted_count, 1)
            self.assertEqual(sorted(d["_id"] for d in coll.find()), [0, 1, 2, 3, 4])
            with self.assertRaises(pymongo.errors.BulkWriteError) as ctx:
                coll.insert_many([{"_id": 1}])
            self.assertEqual(ctx.exception.details["writeErrors"][0]["code"], 11000)
            coll.drop()
            self.assertNotIn("writes", c.test.list_collection_names())

    def test_aggregate_stages(self):
        with self.client() as c:
            coll = self.fill(c, "agg", 1000)
            got = list(coll.aggregate([{"$match": {"g": 2}}, {"$sort": {"i": -1}},
                                       {"$skip": 3}, {"$limit": 4},
                                       {"$project": {"s": 1, "_id": 0}}], batchSize=2))
            want = [{"s": "doc-%d" % i}
                    for i in sorted((i for i in range(1000) if i % 7 == 2), reverse=True)[3:7]]
            self.assertEqual(got, want)
            self.assertEqual(list(coll.aggregate([{"$match": {"g": {"$in": [0, 1]}}},
                                                  {"$count": "n"}])),
                             [{"n": len([i for i in range(1000) if i % 7 in (0, 1)])}])
            self.assertEqual(list(coll.aggregate([{"$match": {"g": 99}}, {"$count": "n"}])), [])
            sample = list(coll.aggregate([{"$sample": {"size": 10}}]))
            self.assertEqual(len(sample), 10)
            self.assertEqual(len({d["_id"] for d in sample}), 10)
            with self.assertRaises(OperationFailure) as ctx:
                list(coll.aggregate([{"$bogus": {}}]))
            self.assertEqual(ctx.exception.code, 40324)
            # $group: what count_documents sends, and a small report.
            self.assertEqual(coll.count_documents({"g": 3}), len([i for i in range(1000)
                                                                  if i % 7 == 3]))
            self.assertEqual(coll.count_documents({"g": 99}), 0)
            report = {d["_id"]: d for d in coll.aggregate([
                {"$match": {"i": {"$lt": 20}}},
                {"$group": {"_id": "$g", "n": {"$sum": 1}, "total": {"$sum": "$i"},
                            "lo": {"$min": "$i"}, "hi": {"$max": "$i"},
                            "first": {"$first": "$s"}}}])}
            self.assertEqual(report[0], {"_id": 0, "n": 3, "total": 21, "lo": 0, "hi": 14,
                                         "first": "doc-0"})
            self.assertEqual(report[6], {"_id": 6, "n": 2, "total": 19, "lo": 6, "hi": 13,
                                         "first": "doc-6"})

    def test_catalog_commands(self):
        with self.client() as c:
            db = c.catalog
            db.create_collection("a")
            db.create_collection("b")
            with self.assertRaises(OperationFailure) as ctx:
                db.command("create", "a")  # pymongo's create_collection checks client-side
            self.assertEqual(ctx.exception.code, 48)
            self.assertEqual(sorted(db.list_collection_names()), ["a", "b"])
            infos = list(db.list_collections(filter={"name": "b"}))
            self.assertEqual([i["name"] for i in infos], ["b"])
            self.assertEqual(infos[0]["idIndex"]["name"], "_id_")
            self.assertIsInstance(infos[0]["info"]["uuid"], uuid.UUID)  # binary subtype 4
            self.assertIn("catalog", c.list_database_names())
            db.a.create_index([("updated_at", 1), ("_id", 1)])
            self.assertEqual([i["name"] for i in db.a.list_indexes()],
                             ["_id_", "updated_at_1__id_1"])
            with self.assertRaises(OperationFailure) as ctx:
                db.command("createIndexes", "a", indexes=[{"key": {"x": 1},
                                                           "name": "updated_at_1__id_1"}])
            self.assertEqual(ctx.exception.code, 86)
            with self.assertRaises(OperationFailure) as ctx:
                db.command("drop", "nope")
            self.assertEqual(ctx.exception.code, 26)
            c.drop_database("catalog")
            self.assertNotIn("catalog", c.list_database_names())
            self.assertEqual(c.admin.command("getParameter", 1,
                                             featureCompatibilityVersion=1)
                             ["featureCompatibilityVersion"]["version"], "5.0")
            self.assertEqual(c.admin.command("buildInfo")["versionArray"][:2], [5, 0])

    def test_fail_point_block_and_app_name(self):
        with self.client(appname="victim") as victim, self.client() as other:
            self.fill(victim, "blocked", 10)
            other.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn",
                                 "data": {"failCommands": ["find"], "blockConnection": True,
                                          "blockTimeMS": 300, "errorCode": 262,
                                          "appName": "victim"}})
            try:
                self.assertEqual(len(list(other.test.blocked.find())), 10)  # other app: untouched
                t0 = time.monotonic()
                with self.assertRaises(OperationFailure) as ctx:
                    list(victim.test.blocked.find())
                self.assertGreaterEqual(time.monotonic() - t0, 0.3)
                self.assertEqual(ctx.exception.code, 262)
            finally:
                r = other.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            self.assertGreaterEqual(r["count"], 1)
            self.assertEqual(len(list(victim.test.blocked.find())), 10)


if __name__ == "__main__":
    unittest.main()
