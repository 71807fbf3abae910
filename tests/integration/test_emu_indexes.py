"""docdb-emu's secondary indexes through pymongo: on collections whose indexed field holds
mixed types (dates, null, missing, strings, numbers, documents, ObjectIds, booleans), every
filter answers the same documents, in the same order when sorted, with the index as without it;
explain shows IXSCAN where the filter bounds the index's first field (or the index gives the
sort) and COLLSCAN otherwise; an array in the field makes the index unusable (COLLSCAN, same
results); results stay right after updates that move documents in the index, deletes and the
compaction many deletes trigger; unique indexes refuse duplicates with code 11000."""
import datetime
import random
import unittest

import bson
import pymongo
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from pymongo.errors import DuplicateKeyError, OperationFailure

from emu import Emu, cert

BASE = datetime.datetime(2024, 1, 1)
KEY = [("updated_at", 1), ("_id", 1)]
N = 3000


def day(n, ms=0):
    return BASE + datetime.timedelta(days=n, milliseconds=ms)


def make_docs(seed):
    """N documents; updated_at mostly dates (with many ties), else every other kind."""
    rnd = random.Random(seed)
    docs = []
    for i in range(N):
        if i % 5 == 0:
            _id = ObjectId("65%022x" % i)
        elif i % 5 == 1:
            _id = "id-%05d" % i
        else:
            _id = i
        doc = {"_id": _id, "n": i, "g": i % 7}
        k = rnd.randrange(100)
        if k < 70:
            doc["updated_at"] = day(rnd.randrange(60), rnd.choice([0, 0, 1, 999]))
        elif k < 75:
            doc["updated_at"] = None
        elif k < 80:
            pass  # missing
        elif k < 84:
            doc["updated_at"] = rnd.choice(["2024-01-05", "b", "", "zz"])
        elif k < 88:
            doc["updated_at"] = rnd.choice([0, 5, -1, Int64(7), 2.5, float("nan"),
                                            Decimal128("5"), float("inf")])
        elif k < 91:
            doc["updated_at"] = {"d": day(rnd.randrange(60))}
        elif k < 94:
            doc["updated_at"] = rnd.choice([True, False])
        elif k < 97:
            doc["updated_at"] = ObjectId("65%022x" % rnd.randrange(100))
        else:
            doc["updated_at"] = bson.timestamp.Timestamp(rnd.randrange(1, 100), 1)
        docs.append(doc)
    return docs


def incremental(d, last_id):
    """The connector's incremental filter (src/engine/sync.c): after (d, last_id)."""
    after = [{"_id": {"$gt": last_id}}]
    ranks = ["number", "string", "object", "array", "binData", "objectId", "bool", "date",
             "timestamp", "regex"]
    start = {int: 0, str: 1, ObjectId: 5}[type(last_id)]
    after += [{"_id": {"$type": t}} for t in ranks[start + 1:]]
    return {"$or": [{"updated_at": {"$gt": d}},
                    {"$and": [{"updated_at": d}, {"$or": after}]}]}


# Filters whose bounds on updated_at are narrower than everything (True), or not (False).
FILTERS = [
    ({"updated_at": {"$gt": day(58)}}, True),
    ({"updated_at": {"$gte": day(10), "$lt": day(12)}}, True),
    ({"updated_at": day(20)}, True),
    ({"updated_at": {"$lte": day(0, 999)}}, True),
    (incremental(day(30), 17), True),
    (incremental(day(30), "id-00021"), True),
    (incremental(day(45, 1), ObjectId("65%022x" % 500)), True),
    ({"updated_at": {"$not": {"$type": "date"}}}, True),
    ({"$and": [{"updated_at": {"$not": {"$type": "date"}}},
               {"$or": [{"_id": {"$gt": 100}}, {"_id": {"$type": "string"}}]}]}, True),
    ({"$or": [{"updated_at": {"$gte": day(50)}}, {"updated_at": {"$not": {"$type": "date"}}}]},
     True),
    ({"updated_at": None}, True),
    ({"updated_at": {"$ne": None}}, True),
    ({"updated_at": {"$exists": False}}, False),
    ({"updated_at": {"$exists": True}}, False),
    ({"updated_at": {"$type": "string"}}, True),
    ({"updated_at": {"$type": ["number", "bool"]}}, True),
    ({"updated_at": {"$gt": 1}}, True),
    ({"updated_at": {"$lt": 3}}, True),
    ({"updated_at": {"$gte": "b"}}, True),
    ({"updated_at": {"$in": [day(3), "b", 5, None, True]}}, True),
    ({"updated_at": {"$nin": [day(3), None]}}, True),
    ({"updated_at": {"$gt": {"d": day(30)}}}, True),
    ({"updated_at": {"$gt": ObjectId("65%022x" % 50)}}, True),
    ({"updated_at": {"$gt": datetime.datetime(2030, 1, 1)}}, True),
    ({"updated_at": {"$gt": day(40)}, "g": 3}, True),
    ({"$or": [{"updated_at": {"$gt": day(55)}}, {"g": 2}]}, False),
    ({"g": 4}, False),
    ({}, False),
    ({"$nor": [{"updated_at": {"$type": "date"}}, {"updated_at": None}]}, True),
    ({"updated_at.d": {"$gt": day(30)}}, False),
]

SORTS = [None, KEY, [("updated_at", -1), ("_id", -1)], [("_id", 1)], [("n", -1)]]


def stages(plan):
    """Every stage name in a winningPlan."""
    out = []
    while plan:
        out.append(plan["stage"])
        plan = plan.get("inputStage")
    return out


def canon(docs):
    """A multiset of documents, order aside (NaN != NaN, so compare encodings)."""
    return sorted(bson.encode(d) for d in docs)


class TestEmuIndexes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu()
        cls.client = pymongo.MongoClient(
            "127.0.0.1", cls.emu.port, tls=True, tlsCAFile=cert("ca.pem"),
            username="alice", password="s3cret", authSource="admin",
            authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=3000)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.emu.stop() == 0, "docdb-emu did not stop cleanly"

    def pair(self, name, seed=1, key=KEY):
        """Two collections holding the same documents, the second with an index on key."""
        db = self.client.idx
        plain, indexed = db[name + "_plain"], db[name + "_indexed"]
        docs = make_docs(seed)
        plain.insert_many(docs)
        indexed.insert_many(docs)
        indexed.create_index(key)
        return plain, indexed

    def explain(self, coll, **cmd):
        return coll.database.command("explain", dict({"find": coll.name}, **cmd),
                                     verbosity="executionStats")

    def assert_same(self, plain, indexed, filt, sort, expect_index=None):
        a = list(plain.find(filt, sort=sort))
        b = list(indexed.find(filt, sort=sort))
        what = "filter %r sort %r" % (filt, sort)
        if sort:
            self.assertEqual([bson.encode(d) for d in a], [bson.encode(d) for d in b], what)
        else:
            self.assertEqual(canon(a), canon(b), what)
        if expect_index is not None:
            cmd = {"filter": filt}
            if sort:
                cmd["sort"] = bson.son.SON(sort)
            plan = self.explain(indexed, **cmd)
            got = stages(plan["queryPlanner"]["winningPlan"])
            self.assertEqual("IXSCAN" in got, expect_index, "%s: plan %s" % (what, got))
            self.assertEqual("COLLSCAN" in got, not expect_index, "%s: plan %s" % (what, got))
            self.assertEqual(plan["executionStats"]["nReturned"], len(a))
        return len(a)

    def check_all(self, plain, indexed, usable=True):
        for filt, bounded in FILTERS:
            for sort in SORTS:
                # The index is used when it bounds the filter or gives the sort; a bounded scan
                # that must be sorted anyway may fall back to a scan, so it is not asserted.
                gives_sort = sort in (KEY, [("updated_at", -1), ("_id", -1)])
                if not usable:
                    expect = False
                elif gives_sort:
                    expect = True
                elif sort is None:
                    expect = bounded
                else:
                    expect = None if bounded else False
                self.assert_same(plain, indexed, filt, sort, expect)
            self.assertEqual(plain.count_documents(filt), indexed.count_documents(filt), filt)
            self.assertEqual(self.client.idx.command("count", plain.name, query=filt)["n"],
                             self.client.idx.command("count", indexed.name, query=filt)["n"])

    def test_same_results_with_and_without_index(self):
        plain, indexed = self.pair("mixed")
        self.check_all(plain, indexed)

    def test_descending_index(self):
        plain, indexed = self.pair("desc", seed=2, key=[("updated_at", -1), ("_id", 1)])
        for filt, bounded in FILTERS:
            for sort in (None, [("updated_at", -1), ("_id", 1)], [("updated_at", 1), ("_id", -1)]):
                self.assert_same(plain, indexed, filt, sort, True if sort else bounded)

    def test_explain_shapes(self):
        plain, indexed = self.pair("explain", seed=3)
        filt = incremental(day(58), 17)
        plan = self.explain(indexed, filter=filt, sort={"updated_at": 1, "_id": 1})
        qp = plan["queryPlanner"]
        self.assertEqual(plan["ok"], 1.0)
        self.assertEqual(qp["namespace"], "idx.explain_indexed")
        win = qp["winningPlan"]
        self.assertEqual(win["stage"], "FETCH")  # the index gives the sort: no SORT stage
        self.assertEqual(win["inputStage"]["stage"], "IXSCAN")
        self.assertEqual(win["inputStage"]["indexName"], "updated_at_1__id_1")
        self.assertEqual(win["inputStage"]["keyPattern"], {"updated_at": 1, "_id": 1})
        self.assertEqual(len(win["inputStage"]["indexBounds"]["updated_at"]), 1)
        stats = plan["executionStats"]
        n = len(list(plain.find(filt)))
        self.assertLess(stats["totalDocsExamined"], 3 * n + 100)
        self.assertLess(stats["totalDocsExamined"], N // 5)
        # pymongo's own explain() goes through the explain command too.
        self.assertIn("IXSCAN", stages(indexed.find(filt).explain()["queryPlanner"]
                                       ["winningPlan"]))
        self.assertEqual(stages(plain.find(filt).explain()["queryPlanner"]["winningPlan"]),
                         ["COLLSCAN"])
        # A sort the plan does not give shows as SORT.
        self.assertEqual(stages(self.explain(plain, filter={}, sort={"n": 1})
                                ["queryPlanner"]["winningPlan"]), ["SORT", "COLLSCAN"])
        # {_id: v} goes through the _id index.
        self.assertEqual(stages(self.explain(indexed, filter={"_id": 17})
                                ["queryPlanner"]["winningPlan"]), ["IDHACK"])
        # count and aggregate ($match, then $group as count_documents sends it).
        undated = {"updated_at": {"$not": {"$type": "date"}}}
        plan = self.client.idx.command("explain", {"count": indexed.name, "query": undated})
        self.assertEqual(stages(plan["queryPlanner"]["winningPlan"]),
                         ["COUNT", "FETCH", "IXSCAN"])
        self.assertEqual(plan["executionStats"]["nReturned"], plain.count_documents(undated))
        pipeline = [{"$match": undated}, {"$group": {"_id": 1, "n": {"$sum": 1}}}]
        plan = self.client.idx.command("explain", {"aggregate": indexed.name,
                                                   "pipeline": pipeline, "cursor": {}})
        self.assertEqual(stages(plan["queryPlanner"]["winningPlan"]), ["FETCH", "IXSCAN"])
        self.assertEqual(list(indexed.aggregate(pipeline)), list(plain.aggregate(pipeline)))
        plan = self.client.idx.command("aggregate", indexed.name, pipeline=pipeline, explain=True)
        self.assertIn("IXSCAN", stages(plan["queryPlanner"]["winningPlan"]))
        # A missing collection, and what explain cannot explain.
        plan = self.client.idx.command("explain", {"find": "nope", "filter": undated})
        self.assertEqual(plan["queryPlanner"]["winningPlan"]["stage"], "EOF")
        with self.assertRaises(OperationFailure):
            self.client.idx.command("explain", {"distinct": indexed.name, "key": "g"})

    def test_multikey_falls_back_to_scan(self):
        plain, indexed = self.pair("multi", seed=4)
        for coll in (plain, indexed):
            coll.insert_one({"_id": "arr", "n": -1, "updated_at": [day(59), "b", None]})
            coll.insert_one({"_id": "arr2", "n": -2, "updated_at": []})
        self.check_all(plain, indexed, usable=False)
        # Once the arrays are gone, the index is used again.
        for coll in (plain, indexed):
            coll.delete_many({"_id": {"$in": ["arr", "arr2"]}})
        self.assert_same(plain, indexed, {"updated_at": {"$gt": day(58)}}, None, True)

    def test_writes_keep_index_right(self):
        plain, indexed = self.pair("writes", seed=5)
        rnd = random.Random(5)
        for coll in (plain, indexed):
            # Move documents within the index and across types.
            coll.update_many({"g": 1}, {"$set": {"updated_at": day(59, 5)}})
            coll.update_many({"g": 2, "updated_at": {"$type": "date"}},
                             {"$unset": {"updated_at": ""}})
            coll.update_many({"g": 3}, {"$inc": {"n": -10000}})  # key unchanged, n unique
            coll.update_one({"n": 7}, {"$set": {"updated_at": "moved"}})
            coll.replace_one({"n": 8}, {"n": 8, "updated_at": day(1)})
        for _ in range(20):
            i, when = rnd.randrange(N), day(rnd.randrange(60))
            for coll in (plain, indexed):
                coll.update_one({"n": i}, {"$set": {"updated_at": when}})
        self.check_all(plain, indexed)
        for coll in (plain, indexed):
            coll.delete_many({"g": 5})
            coll.delete_one({"updated_at": {"$gt": day(50)}})
        self.check_all(plain, indexed)
        # Most of the rest: enough deleted slots for a compaction (store.c: at least 1024, and
        # more than the live documents), then new documents into the renumbered slots.
        for coll in (plain, indexed):
            coll.delete_many({"n": {"$lt": 2800}})
            self.assertLess(coll.count_documents({}), 300)
            coll.insert_many([{"_id": "new-%d" % i, "n": 5000 + i, "g": i % 7,
                               "updated_at": day(i % 60)} for i in range(500)])
        self.assertEqual(indexed.count_documents({}), plain.count_documents({}))
        self.check_all(plain, indexed)

    def test_drop_index_and_collection(self):
        plain, indexed = self.pair("drops", seed=6)
        filt = {"updated_at": {"$gt": day(55)}}
        self.assert_same(plain, indexed, filt, None, True)
        indexed.drop_index("updated_at_1__id_1")
        self.assert_same(plain, indexed, filt, None, False)
        self.assertEqual([i["name"] for i in indexed.list_indexes()], ["_id_"])
        indexed.create_index([("updated_at", 1)], name="u")
        indexed.create_index([("g", 1)], name="g")
        self.assert_same(plain, indexed, filt, None, True)
        self.assertEqual(indexed.database.command("dropIndexes", indexed.name,
                                                  index="*")["nIndexesWas"], 3)
        with self.assertRaises(OperationFailure) as ctx:
            indexed.drop_index("u")
        self.assertEqual(ctx.exception.code, 27)
        with self.assertRaises(OperationFailure) as ctx:
            indexed.drop_index("_id_")
        indexed.create_index(KEY)
        indexed.drop()
        indexed.insert_many(make_docs(6))
        self.assert_same(plain, indexed, filt, None, False)

    def test_unique_index(self):
        coll = self.client.idx.uniq
        coll.insert_many([{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"},
                          {"_id": 3, "email": "a@x"}])
        with self.assertRaises(OperationFailure) as ctx:
            coll.create_index("email", unique=True)
        self.assertEqual(ctx.exception.code, 11000)
        coll.delete_one({"_id": 3})
        coll.create_index("email", unique=True)
        with self.assertRaises(DuplicateKeyError) as ctx:
            coll.insert_one({"_id": 4, "email": "b@x"})
        self.assertIn("index: email_1 dup key", str(ctx.exception))
        with self.assertRaises(DuplicateKeyError):
            coll.update_one({"_id": 1}, {"$set": {"email": "b@x"}})
        coll.update_one({"_id": 1}, {"$set": {"email": "c@x"}})
        coll.insert_one({"_id": 4, "email": "a@x"})
        with self.assertRaises(pymongo.errors.BulkWriteError) as ctx:
            coll.insert_many([{"_id": 5, "email": "d@x"}, {"_id": 6, "email": "d@x"},
                              {"_id": 7, "email": "e@x"}], ordered=False)
        self.assertEqual([e["code"] for e in ctx.exception.details["writeErrors"]], [11000])
        self.assertEqual(sorted(d["email"] for d in coll.find()),
                         ["a@x", "b@x", "c@x", "d@x", "e@x"])


if __name__ == "__main__":
    unittest.main()
