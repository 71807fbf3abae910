"""Helpers for the connector's integration tests: a docdb-emu with TLS and SCRAM-SHA-1, a
configuration file, running `docdb-connector`, and the rows a document must become, computed
here independently of the connector's C code (docs/types.md)."""
import base64
import datetime
import json
import math
import os
import signal
import sqlite3
import subprocess
import tempfile

import bson
import pymongo

from emu import Emu, cert

CONNECTOR = os.environ.get("DOCDB_CONNECTOR", "docdb-connector")


def kill(proc):
    """SIGKILL proc and wait for it. libmongoc keeps counters in /dev/shm/mongoc-PID; the
    connector unlinks them as main() starts, but a kill before that leaves them, and a later
    process given the same PID would print a warning on stderr before its main() runs. Such a
    leftover is removed here so that later tests see clean logs."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        os.unlink("/dev/shm/mongoc-%d" % proc.pid)
    except FileNotFoundError:
        pass
PASSWORD = "p@ss:w/rd?#%+ x"  # every character a URI would need escaped


def start_emu(*extra):
    return Emu(users=("alice:" + PASSWORD,), extra=list(extra))


def client(emu):
    return pymongo.MongoClient("localhost", emu.port, tls=True, tlsCAFile=cert("ca.pem"),
                               username="alice", password=PASSWORD,
                               authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=5000)


def config(emu, **over):
    """The seed's configuration.json, all values strings, plus our CA file."""
    cfg = {"hostname": "localhost", "port": str(emu.port), "username": "alice",
           "password": PASSWORD, "database": "app", "tls_ca_file": cert("ca.pem")}
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}


class Workdir:
    """A project folder like `fivetran debug` uses: configuration.json, files/."""

    def __init__(self, cfg):
        self.tmp = tempfile.TemporaryDirectory(prefix="dc-sync-")
        self.path = self.tmp.name
        self.write_config(cfg)

    def write_config(self, cfg):
        with open(os.path.join(self.path, "configuration.json"), "w") as f:
            json.dump(cfg, f)

    @property
    def db_path(self):
        return os.path.join(self.path, "files", "warehouse.db")

    @property
    def state_path(self):
        return os.path.join(self.path, "files", "state.json")

    def state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def run(self, *args, timeout=300):
        return subprocess.run([CONNECTOR] + list(args), cwd=self.path, capture_output=True,
                              text=True, timeout=timeout)

    def sync(self, *args, **kw):
        return self.run("sync", *args, **kw)

    def start_sync(self, *args):
        return subprocess.Popen([CONNECTOR, "sync"] + list(args), cwd=self.path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rows(self, table, order="_id"):
        con = sqlite3.connect(self.db_path)
        con.row_factory = sqlite3.Row
        try:
            cur = con.execute('SELECT * FROM "%s" ORDER BY "%s"' % (table.replace('"', '""'),
                                                                    order))
            return [dict(r) for r in cur]
        finally:
            con.close()

    def query(self, sql, *params):
        con = sqlite3.connect(self.db_path)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def cleanup(self):
        self.tmp.cleanup()


# ---- the rows a document must become, written independently of the C converter ----

def iso(dt):
    """A BSON date as ISO-8601 UTC with milliseconds."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def plain_json(v):
    """Plain JSON text of a decoded BSON value, compact, keys in document order."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + plain_json(x)
                              for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(plain_json(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, bson.ObjectId):
        return '"%s"' % v
    if isinstance(v, datetime.datetime):
        return '"%s"' % iso(v)
    if isinstance(v, bson.Decimal128):
        return json.dumps(plain_decimal(v))
    if isinstance(v, float):
        if math.isnan(v):
            return '"NaN"'
        if math.isinf(v):
            return '"Infinity"' if v > 0 else '"-Infinity"'
        return repr(v)  # the shortest text that reads back to the same double
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return '"%s"' % base64.b64encode(v).decode()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise TypeError("no expected JSON for %r" % (v,))


def plain_decimal(d):
    """Decimal128 as plain decimal text, significant zeros kept."""
    dec = d.to_decimal()
    if dec.is_nan():
        return "NaN"
    if dec.is_infinite():
        return "Infinity" if dec > 0 else "-Infinity"
    return format(dec, "f")


def row_value(v):
    """The SQLite value a top-level field of a declared or natural type becomes."""
    if v is None:
        return None
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, bson.ObjectId):
        return str(v)
    if isinstance(v, datetime.datetime):
        return iso(v)
    if isinstance(v, (dict, list)):
        return plain_json(v)
    if isinstance(v, bson.Decimal128):
        return plain_decimal(v)
    if isinstance(v, bytes):
        return v
    return v  # str, int, float


def id_text(v):
    if isinstance(v, bson.ObjectId):
        return str(v)
    if isinstance(v, str):
        return v
    return plain_json(v)


def assert_table_equals(test, work, table, docs, columns=None):
    """Every document is a row, every row a document, field by field."""
    rows = {r["_id"]: r for r in work.rows(table)}
    test.assertEqual(len(rows), len(docs), "row count of %s" % table)
    for d in docs:
        key = id_text(d["_id"])
        test.assertIn(key, rows, "document %r missing from %s" % (d["_id"], table))
        row = rows[key]
        for field, value in d.items():
            if field == "_id" or (columns is not None and field not in columns):
                continue
            col = columns[field] if columns else field
            test.assertEqual(row.get(col), row_value(value),
                             "%s.%s of %r" % (table, col, d["_id"]))
        test.assertEqual(row["_fivetran_deleted"], 0)
        test.assertRegex(row["_fivetran_synced"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
