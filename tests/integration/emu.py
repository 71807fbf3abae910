"""Starts docdb-emu for a Python integration test and stops it, checking it exits cleanly.

The binary comes from $DOCDB_EMU and the test certificates from $TEST_CERTS (set by CMake).
"""
import os
import signal
import subprocess

CERTS = os.environ.get("TEST_CERTS", "test-certs")


def cert(name):
    return os.path.join(CERTS, name)


class Emu:
    def __init__(self, tls=True, users=("alice:s3cret",), extra=()):
        args = [os.environ.get("DOCDB_EMU", "docdb-emu"), "--port", "0"]
        if tls:
            args += ["--tls-cert", cert("server.pem"), "--tls-key", cert("server.key")]
        for u in users:
            args += ["--user", u]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError("docdb-emu did not start: %r" % line)
        self.host, port = line[len("listening on "):].strip().rsplit(":", 1)
        self.port = int(port)

    def stop(self):
        """SIGTERM, then the exit status: 0 when it stopped cleanly (and, under
        AddressSanitizer, without leaks)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
