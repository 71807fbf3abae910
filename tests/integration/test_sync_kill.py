"""Crash safety: `docdb-connector sync` of 200k documents killed with SIGKILL at 50+ random
instants (in the full read, between checkpoints, in incremental reads while the source keeps
changing, with undated documents inserted all along); after the reruns the warehouse equals
the source exactly, row by row."""
import datetime
import random
import time
import unittest

import bson
from bson.codec_options import CodecOptions

from connector import Workdir, assert_table_equals, client, config, kill, start_emu

UTC = datetime.timezone.utc
N = 200_000
KILLS = 52


class TestSyncKill(unittest.TestCase):
    def test_sigkill_at_random_instants(self):
        emu = start_emu()
        self.addCleanup(lambda: self.assertEqual(emu.stop(), 0))
        c = client(emu)
        self.addCleanup(c.close)
        db = c.get_database("app", codec_options=CodecOptions(tz_aware=True))
        rnd = random.Random(20261124)
        base = datetime.datetime(2024, 1, 1, tzinfo=UTC)
        docs = [{"_id": bson.ObjectId(), "n": i, "name": "user-%d" % i,
                 "score": rnd.random() * 1000,
                 "updated_at": base + datetime.timedelta(milliseconds=i // 7)}  # many ties
                for i in range(N - 10)]
        for d in docs[::97]:
            del d["updated_at"]  # undated: only the full read and the undated read see them
        # A few ids of another type sort after every ObjectId-less type: strings sort before
        # ObjectIds, so they come first in _id order and must not be skipped on resume.
        docs += [{"_id": "s-%d" % i, "n": i, "name": "str", "score": 0.5,
                  "updated_at": base} for i in range(10)]
        for i in range(0, len(docs), 50_000):
            db.users.insert_many(docs[i:i + 50_000])

        w = Workdir(config(emu, collections="users", checkpoint_interval="1000",
                           batch_size="5000"))
        self.addCleanup(w.cleanup)
        t0 = time.monotonic()
        kills = clock = 0

        def mutate():
            # The source moves on: 20k updates sharing one new cursor value (ties across
            # checkpoints) and 200 inserts, so that kills land in incremental reads too.
            nonlocal clock
            clock += 1
            when = base + datetime.timedelta(days=clock)
            lo = rnd.randrange(N - 20_000)
            db.users.update_many({"n": {"$gte": lo, "$lt": lo + 20_000}},
                                 {"$inc": {"score": 1.0}, "$set": {"updated_at": when}})
            db.users.insert_many([{"_id": bson.ObjectId(), "n": -1, "name": "new",
                                   "score": 1.0, "updated_at": when} for _ in range(200)])
            # and undated inserts, which only the undated read after max_id finds
            db.users.insert_many([{"_id": bson.ObjectId(), "n": -2, "name": "undated",
                                   "score": 2.0} for _ in range(30)])

        def complete_and_compare():
            r = w.sync()
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            assert_table_equals(self, w, "users", list(db.users.find()))

        while kills < KILLS:
            p = w.start_sync()
            time.sleep(rnd.uniform(0.02, 0.6))
            killed = p.poll() is None
            if killed:
                kill(p)
                kills += 1
            p.wait()
            if not killed:
                self.assertEqual(p.returncode, 0)
            if not killed or kills % 4 == 0:
                mutate()
            if killed and kills % 13 == 0:
                complete_and_compare()
        complete_and_compare()
        print("%d kills in %.0f s" % (kills, time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main()
