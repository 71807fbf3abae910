"""docdb-emu's modes, through pymongo and a hand-written SCRAM client: replica-set mode as
DocumentDB presents itself (replicaSet=rs0), DocumentDB's refusal of retryable writes (301) and
of SCRAM-SHA-256, the mongodb personality's SCRAM-SHA-256, the long SCRAM conversation, and a
settable wire version. Each test starts its own server."""
import base64
import hashlib
import hmac
import os
import socket
import unittest

import bson
import pymongo
from pymongo.errors import OperationFailure

from emu import Emu, cert
from test_emu_robustness import op_msg, read_reply


def client(emu, host="localhost", **kw):
    kw.setdefault("authMechanism", "SCRAM-SHA-1")
    return pymongo.MongoClient(host, emu.port, tls=True, tlsCAFile=cert("ca.pem"),
                               username="alice", password="s3cret", authSource="admin",
                               serverSelectionTimeoutMS=3000, **kw)


class TestEmuTopology(unittest.TestCase):
    def run_emu(self, *extra):
        emu = Emu(extra=list(extra))
        self.addCleanup(lambda: self.assertEqual(emu.stop(), 0, "docdb-emu did not stop cleanly"))
        return emu

    def test_replica_set_like_documentdb(self):
        emu = self.run_emu("--replica-set", "rs0")
        with client(emu, replicaSet="rs0", readPreference="secondaryPreferred",
                    retryWrites=False) as c:
            hello = c.admin.command("isMaster")
            self.assertEqual(hello["setName"], "rs0")
            self.assertEqual(hello["hosts"], ["localhost:%d" % emu.port])
            self.assertEqual(hello["me"], "localhost:%d" % emu.port)
            c.app.users.insert_one({"_id": 1, "name": "Ada"})
            self.assertEqual(c.app.users.find_one({"_id": 1})["name"], "Ada")
            self.assertEqual(c.primary, ("localhost", emu.port))

    def test_retryable_writes_refused_as_documentdb(self):
        emu = self.run_emu("--replica-set", "rs0")
        with client(emu, replicaSet="rs0", retryWrites=True) as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.app.users.insert_one({"_id": 2})
            self.assertEqual(ctx.exception.code, 301)
            self.assertIn("Retryable writes are not supported", str(ctx.exception))

    def test_mongodb_personality_accepts_retryable_writes(self):
        emu = self.run_emu("--replica-set", "rs0", "--personality", "mongodb")
        with client(emu, replicaSet="rs0", retryWrites=True) as c:
            c.app.users.insert_one({"_id": 3})
            self.assertEqual(c.app.users.find_one({"_id": 3}), {"_id": 3})

    def test_documentdb_refuses_sha256(self):
        emu = self.run_emu()
        with client(emu, authMechanism="SCRAM-SHA-256") as c:
            with self.assertRaises(OperationFailure) as ctx:
                c.admin.command("listDatabases")
            self.assertEqual(ctx.exception.code, 334)

    def test_mongodb_personality_sha256(self):
        emu = self.run_emu("--personality", "mongodb")
        with client(emu, authMechanism="SCRAM-SHA-256") as c:
            self.assertIn("databases", c.admin.command("listDatabases"))
        with client(emu, authMechanism="SCRAM-SHA-1") as c:
            self.assertIn("databases", c.admin.command("listDatabases"))
            hello = c.admin.command("isMaster", saslSupportedMechs="admin.alice")
            self.assertEqual(hello["saslSupportedMechs"], ["SCRAM-SHA-1", "SCRAM-SHA-256"])

    def test_wire_version_setting(self):
        emu = self.run_emu("--wire-version", "9")
        with client(emu) as c:
            self.assertEqual(c.admin.command("isMaster")["maxWireVersion"], 9)
            self.assertEqual(c.admin.command("buildInfo")["version"], "4.4.0")

    def test_long_scram_conversation(self):
        """A SCRAM-SHA-1 client written here from RFC 5802 and mongod's MD5 pre-hash, without
        skipEmptyExchange: the server must ask for the final empty round."""
        emu = Emu(tls=False)
        self.addCleanup(emu.stop)
        s = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
        self.addCleanup(s.close)
        rid = [0]

        def command(doc):
            rid[0] += 1
            s.sendall(op_msg(dict(doc, **{"$db": "admin"}), request_id=rid[0]))
            response_to, reply = read_reply(s)
            self.assertEqual(response_to, rid[0])
            return reply

        self.assertEqual(command({"listDatabases": 1})["code"], 13)
        cnonce = base64.b64encode(os.urandom(24)).decode()
        first_bare = "n=alice,r=" + cnonce
        r = command({"saslStart": 1, "mechanism": "SCRAM-SHA-1",
                     "payload": bson.Binary(("n,," + first_bare).encode())})
        self.assertEqual(r["ok"], 1.0)
        self.assertIsInstance(r["conversationId"], int)
        server_first = bytes(r["payload"]).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        self.assertTrue(attrs["r"].startswith(cnonce))
        salt = base64.b64decode(attrs["s"])
        self.assertEqual(len(salt), 16)
        iterations = int(attrs["i"])
        self.assertGreaterEqual(iterations, 4096)
        digest = hashlib.md5(b"alice:mongo:s3cret").hexdigest().encode()
        salted = hashlib.pbkdf2_hmac("sha1", digest, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
        stored = hashlib.sha1(client_key).digest()
        final_wo_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha1).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        r = command({"saslContinue": 1, "conversationId": 1,
                     "payload": bson.Binary((final_wo_proof + ",p=" + proof).encode())})
        self.assertEqual(r["ok"], 1.0)
        self.assertIs(r["done"], False)
        server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
        expected_v = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha1).digest())
        self.assertEqual(bytes(r["payload"]), b"v=" + expected_v)
        self.assertEqual(command({"listDatabases": 1})["code"], 13)  # not yet: one round left
        r = command({"saslContinue": 1, "conversationId": 1, "payload": bson.Binary(b"")})
        self.assertIs(r["done"], True)
        self.assertEqual(command({"listDatabases": 1})["ok"], 1.0)


if __name__ == "__main__":
    unittest.main()
