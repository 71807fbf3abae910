"""docdb-emu under hostile input, over raw sockets: bad lengths, truncated and invalid BSON,
unknown opcodes and section kinds, deep nesting, random garbage, and 1000 clients vanishing
mid-message. Each bad connection must be closed, and the server must keep answering the next
client and stop cleanly (no leaks under AddressSanitizer)."""
import os
import random
import socket
import struct
import threading
import unittest

import bson
import pymongo

from emu import Emu

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013


def op_msg(doc, request_id=1, flags=0, raw_body=None):
    body = raw_body if raw_body is not None else struct.pack("<I", flags) + b"\x00" + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body


def read_reply(sock):
    header = recv_exact(sock, 16)
    if header is None:
        return None
    length, _, response_to, opcode = struct.unpack("<iiii", header)
    body = recv_exact(sock, length - 16)
    if opcode == OP_MSG:
        return response_to, bson.decode(body[5:])
    assert opcode == OP_REPLY
    return response_to, bson.decode(body[20:])


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class TestEmuRobustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emu(tls=False, users=())

    @classmethod
    def tearDownClass(cls):
        assert cls.emu.stop() == 0, "docdb-emu did not stop cleanly"

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.emu.port), timeout=10)
        return s

    def assert_closed(self, payload):
        """Sends payload and expects the server to close the connection without a reply."""
        s = self.connect()
        try:
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                answer = s.recv(1 << 16)
            except (ConnectionResetError, BrokenPipeError, OSError):
                answer = b""  # closed before reading all we sent: the kernel resets
            self.assertEqual(answer, b"", "server answered malformed input %r" % payload[:40])
        finally:
            s.close()
        self.assert_alive()

    def assert_alive(self):
        with pymongo.MongoClient("127.0.0.1", self.emu.port, serverSelectionTimeoutMS=5000) as c:
            self.assertEqual(c.admin.command("ping")["ok"], 1.0)

    def test_bad_lengths(self):
        for length in (0, 4, 15, 16, 20, -1, -2**31, 48000001, 2**31 - 1):
            self.assert_closed(struct.pack("<iiii", length, 1, 0, OP_MSG) + b"\x00" * 8)

    def test_truncated_bson(self):
        doc = bson.encode({"ping": 1, "$db": "admin"})
        # The document claims more bytes than the message carries.
        body = struct.pack("<I", 0) + b"\x00" + struct.pack("<i", len(doc) + 50) + doc[4:]
        self.assert_closed(op_msg(None, raw_body=body))
        # The message ends inside the document.
        body = struct.pack("<I", 0) + b"\x00" + doc[:-3]
        self.assert_closed(op_msg(None, raw_body=body))

    def test_invalid_bson_elements(self):
        good = bytearray(bson.encode({"ping": "xyz", "$db": "admin"}))
        bad_type = bytearray(good)
        bad_type[4] = 0x77  # unknown element type
        bad_string = bytearray(good)
        bad_string[10:14] = struct.pack("<i", 1000)  # string length past the document
        for doc in (bad_type, bad_string, b"\x05\x00\x00\x00\x01"):
            self.assert_closed(op_msg(None, raw_body=struct.pack("<I", 0) + b"\x00" + bytes(doc)))

    def test_unknown_opcodes(self):
        for opcode in (9999, 2012, 2002, 2001, 2006, 1):
            self.assert_closed(struct.pack("<iiii", 32, 1, 0, opcode) + b"\x00" * 16)

    def test_bad_sections(self):
        doc = bson.encode({"ping": 1, "$db": "admin"})
        for body in (
            struct.pack("<I", 0) + b"\x05" + doc,                    # unknown kind
            struct.pack("<I", 0) + b"\x00" + doc + b"\x00" + doc,    # two kind-0 sections
            struct.pack("<I", 0) + b"\x01" + struct.pack("<i", 9) + b"docs\x00",  # no kind 0
            struct.pack("<I", 0) + b"\x00" + doc + b"\x01" + struct.pack("<i", 999) + b"x\x00",
            struct.pack("<I", 1 << 5) + b"\x00" + doc,               # unknown required flag
        ):
            self.assert_closed(op_msg(None, raw_body=body))

    def test_deep_nesting(self):
        depth = 5000
        inner = b"\x05\x00\x00\x00\x00"
        for _ in range(depth):
            element = b"\x03a\x00" + inner
            inner = struct.pack("<i", 4 + len(element) + 1) + element + b"\x00"
        self.assert_closed(op_msg(None, raw_body=struct.pack("<I", 0) + b"\x00" + inner))

    def test_random_garbage(self):
        rnd = random.Random(42)
        for _ in range(300):
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
            opcode = rnd.choice([OP_MSG, OP_QUERY, rnd.randint(0, 5000)])
            msg = struct.pack("<iiii", 16 + len(body), rnd.randint(0, 1000), 0, opcode) + body
            s = self.connect()
            try:
                try:
                    s.sendall(msg)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(1 << 16):
                        pass
                except OSError:
                    pass  # the server closed first: that is its right
            finally:
                s.close()
        self.assert_alive()

    def test_more_to_come_gets_no_reply(self):
        s = self.connect()
        try:
            s.sendall(op_msg({"insert": "c", "documents": [{"_id": 1}], "$db": "robust"},
                             request_id=7, flags=2))
            s.sendall(op_msg({"find": "c", "filter": {}, "$db": "robust"}, request_id=8))
            response_to, reply = read_reply(s)
            self.assertEqual(response_to, 8)
            self.assertEqual(reply["cursor"]["firstBatch"], [{"_id": 1}])
        finally:
            s.close()

    def test_checksum_flag_accepted(self):
        s = self.connect()
        try:
            body = struct.pack("<I", 1) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
            s.sendall(op_msg(None, request_id=11, raw_body=body + b"\x00\x00\x00\x00"))
            self.assertEqual(read_reply(s), (11, {"ok": 1.0}))
        finally:
            s.close()

    def test_legacy_op_query_handshake(self):
        s = self.connect()
        try:
            q = bson.encode({"ismaster": 1})
            body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + q
            s.sendall(struct.pack("<iiii", 16 + len(body), 99, 0, OP_QUERY) + body)
            response_to, reply = read_reply(s)
            self.assertEqual(response_to, 99)
            self.assertIs(reply["ismaster"], True)
            self.assertEqual(reply["maxWireVersion"], 13)
            self.assertNotIn("topologyVersion", reply)
            # After the handshake, OP_MSG on the same connection.
            s.sendall(op_msg({"ping": 1, "$db": "admin"}, request_id=100))
            self.assertEqual(read_reply(s), (100, {"ok": 1.0}))
        finally:
            s.close()

    def test_errors_have_code_and_name(self):
        s = self.connect()
        try:
            s.sendall(op_msg({"find": "c", "filter": {"a": {"$where": 1}}, "$db": "x"}, request_id=3))
            _, reply = read_reply(s)
            self.assertEqual(reply["ok"], 0.0)
            self.assertEqual(reply["code"], 2)
            self.assertEqual(reply["codeName"], "BadValue")
            s.sendall(op_msg({"noSuchCommand": 1, "$db": "x"}, request_id=4))
            _, reply = read_reply(s)
            self.assertEqual((reply["code"], reply["codeName"]), (59, "CommandNotFound"))
            s.sendall(op_msg({"ping": 1}, request_id=5))  # no $db
            _, reply = read_reply(s)
            self.assertEqual(reply["ok"], 0.0)
        finally:
            s.close()

    def test_thousand_clients_vanishing(self):
        doc = bson.encode({"insert": "c", "documents": [{"x": "y" * 100}], "$db": "robust"})
        full = op_msg(None, raw_body=struct.pack("<I", 0) + b"\x00" + doc)
        cuts = [0, 3, 16, 20, len(full) // 2, len(full) - 1]
        errors = []

        def worker(k):
            try:
                for i in range(k, 1000, 20):
                    s = self.connect()
                    s.sendall(full[:cuts[i % len(cuts)]])
                    if i % 3 == 0:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
            except OSError as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assert_alive()


if __name__ == "__main__":
    unittest.main()
