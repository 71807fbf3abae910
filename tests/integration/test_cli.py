"""The connector's other doors: `test` (verdict, index warnings, exit codes), `schema` (JSON of
tables, keys and types), `--log-format json`, `--help` and `--version`, and usage errors."""
import datetime
import json
import subprocess
import unittest

import bson

from connector import CONNECTOR, PASSWORD, Workdir, client, config, start_emu

UTC = datetime.timezone.utc


class TestCli(unittest.TestCase):
    def setUp(self):
        self.emu = start_emu()
        self.addCleanup(lambda: self.assertEqual(self.emu.stop(), 0))
        self.client = client(self.emu)
        self.addCleanup(self.client.close)
        db = self.client.app
        now = datetime.datetime(2024, 5, 1, tzinfo=UTC)
        db.users.insert_many([{"_id": bson.ObjectId(), "name": "a", "updated_at": now,
                               "metadata": {"x": 1}, "userScore": 1},
                              {"_id": bson.ObjectId(), "name": "b", "updated_at": now,
                               "userScore": 2.5}])
        db.orders.insert_one({"_id": 1, "total_amount": 9.99, "updated_at": now,
                              "items": [], "paid": True})
        db.orders.create_index([("updated_at", 1), ("_id", 1)])

    def work(self, **over):
        w = Workdir(config(self.emu, **over))
        self.addCleanup(w.cleanup)
        return w

    def test_test_command(self):
        r = self.work().run("test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 1)
        self.assertTrue(r.stdout.startswith("docdb-connector test: OK"), r.stdout)
        self.assertIn("2 collections", r.stdout)
        self.assertIn("1 without an index on 'updated_at'", r.stdout)
        self.assertIn("users has no index on 'updated_at'", r.stderr)
        self.assertNotIn("orders has no index", r.stderr)
        self.assertIn("alice:****@", r.stdout)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)

    def test_test_command_failures(self):
        r = self.work(password="wrong").run("test")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("docdb-connector test: FAILED"), r.stdout)
        self.assertIn("authentication failed", r.stdout)
        r = self.work(collections="users,nope").run("test")
        self.assertEqual(r.returncode, 2)
        self.assertIn("'nope' does not exist", r.stdout)
        r = self.work(port="1").run("test")
        self.assertEqual(r.returncode, 1, r.stdout)
        r = self.work(port="99999").run("test")
        self.assertEqual(r.returncode, 2)

    def test_schema_command(self):
        r = self.work().run("schema")
        self.assertEqual(r.returncode, 0, r.stderr)
        tables = {t["table"]: t for t in json.loads(r.stdout)["tables"]}
        self.assertEqual(tables["users"]["primary_key"], ["_id"])
        self.assertEqual(tables["users"]["columns"],
                         {"_id": "STRING", "created_at": "UTC_DATETIME",
                          "updated_at": "UTC_DATETIME", "metadata": "JSON", "name": "STRING",
                          "user_score": "DOUBLE"})
        self.assertEqual(tables["orders"]["columns"],
                         {"_id": "STRING", "created_at": "UTC_DATETIME",
                          "updated_at": "UTC_DATETIME", "items": "JSON",
                          "total_amount": "DOUBLE", "paid": "BOOLEAN"})
        r = self.work().run("schema", "--naming", "source")
        tables = {t["table"]: t for t in json.loads(r.stdout)["tables"]}
        self.assertIn("userScore", tables["users"]["columns"])

    def test_json_logs(self):
        w = self.work()
        r = w.sync("--log-format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(l) for l in r.stderr.splitlines()]
        self.assertTrue(lines)
        for l in lines:
            self.assertEqual(set(l), {"level", "message", "message-origin"})
            self.assertIn(l["level"], ("INFO", "WARNING", "SEVERE"))
            self.assertEqual(l["message-origin"], "sdk_connector")
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        w2 = self.work(password="wrong")
        r = w2.sync("--log-format", "json")
        self.assertEqual(r.returncode, 1)
        severe = [json.loads(l) for l in r.stderr.splitlines() if l.startswith("{")]
        self.assertTrue(any(l["level"] == "SEVERE" for l in severe))

    def test_help_version_and_usage(self):
        for args in (["--help"], ["sync", "--help"], ["test", "--help"], ["schema", "--help"]):
            r = subprocess.run([CONNECTOR] + args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: docdb-connector", r.stdout)
        r = subprocess.run([CONNECTOR, "--version"], capture_output=True, text=True)
        self.assertRegex(r.stdout, r"^docdb-connector \d+\.\d+\.\d+\n$")
        for args in ([], ["bogus"], ["sync", "--naming", "x"], ["sync", "--bogus"],
                     ["sync", "extra"], ["sync", "--destination", "postgres:x"],
                     ["sync", "--log-format", "xml"]):
            r = subprocess.run([CONNECTOR] + args, capture_output=True, text=True,
                               cwd=self.work().path)
            self.assertEqual(r.returncode, 2, args)
        r = subprocess.run([CONNECTOR, "sync", "--config", "/nonexistent.json"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
