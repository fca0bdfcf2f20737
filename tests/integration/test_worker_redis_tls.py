#!/usr/bin/env python3
"""Redis over TLS through the stunnel sidecar (deploy/redis-tls/stunnel.conf).

hiredis 0.14 has no TLS, so leadpulse reaches a TLS-only Redis through stunnel on loopback. The
test makes a CA and a server certificate with openssl, starts a redis-server that listens on a
TLS port only, checks that it refuses plain Redis, and renders the shipped stunnel.conf (only its
EDIT values changed). Then:
1. a worker through the sidecar applies a stream produced at a steady rate; hand-offs and final
   state equal `leadpulse replay` (state read through the sidecar too);
2. a sidecar that trusts another CA refuses the server: the worker stays up, /readyz says Redis is
   unreachable, and nothing is written.
"""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def sh(*args, cwd):
    subprocess.run(args, check=True, capture_output=True, cwd=cwd)


def make_ca(d, name):
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
       "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)


def make_server_cert(d, ca):
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
       "-keyout", "server.key", "-out", "server.csr", cwd=d)
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
       "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)


def render_stunnel(d, name, accept_port, tls_port, ca_file):
    text = open(os.path.join(lpit.Env().src, "deploy/redis-tls/stunnel.conf")).read()
    text = text.replace("accept = 127.0.0.1:6379", f"accept = 127.0.0.1:{accept_port}")
    text = text.replace("connect = redis.example.net:6380", f"connect = 127.0.0.1:{tls_port}")
    text = text.replace("CAfile = /etc/stunnel/redis-ca.crt", f"CAfile = {ca_file}")
    text = text.replace("checkHost = redis.example.net", "checkHost = localhost")
    assert f"127.0.0.1:{tls_port}" in text and ca_file in text, "stunnel.conf changed shape"
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_port(port, timeout=20):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    lpit.wait_until(up, timeout, f"port {port} open")


def plain_ping(port):
    """What a plain-text PING gets from the port (b'' when the server drops it)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            s.settimeout(2)
            return s.recv(100)
    except OSError as e:
        return repr(e).encode()


def readyz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def main():
    ctx = lpit.Ctx("redistls", partitions=3)
    checks = lpit.Checks("test_worker_redis_tls")
    procs = []
    try:
        d = os.path.join(ctx.dir, "tls")
        os.makedirs(d)
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_server_cert(d, "ca")
        tls_port = lpit.free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(tls_port), "--bind", "127.0.0.1",
             "--tls-cert-file", os.path.join(d, "server.crt"),
             "--tls-key-file", os.path.join(d, "server.key"),
             "--tls-ca-cert-file", os.path.join(d, "ca.crt"), "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(tls_port)
        reply = plain_ping(tls_port)
        checks.check(b"+PONG" not in reply,
                     f"the Redis server speaks TLS only: a plain PING gets {reply[:40]!r}")

        side_port = lpit.free_port()
        conf = render_stunnel(d, "sidecar", side_port, tls_port, os.path.join(d, "ca.crt"))
        procs.append(subprocess.Popen(["stunnel", conf], stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(d, "stunnel.log"), "w")))
        wait_port(side_port)
        url = f"redis://127.0.0.1:{side_port}"
        ctx.env.redis_url = url          # workers, inspect and the test's own reads: the sidecar
        ctx.redis = lpit.Redis(url)
        pong = ctx.redis.command("PING")
        checks.check(pong in (b"PONG", "PONG"), f"PING through the sidecar: {pong!r}")

        # 1. a stream through the sidecar equals replay
        sc = lpit.Scenario(ctx, seed=61, leads=300, events=4000, rate=1500)
        total = sum(1 for line in open(sc.path) if line.strip())
        sc.start_stream()
        w = sc.worker("tls")
        sc.finish_stream()
        sc.wait_applied_at_least(total, timeout=120)
        sc.settle_and_compare(checks, "through the TLS sidecar")

        # 2. a sidecar that trusts another CA: the handshake fails, the worker waits
        bad_port = lpit.free_port()
        bad_conf = render_stunnel(d, "wrong-ca", bad_port, tls_port,
                                  os.path.join(d, "other-ca.crt"))
        procs.append(subprocess.Popen(["stunnel", bad_conf], stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(d, "stunnel-bad.log"), "w")))
        wait_port(bad_port)
        keys_before = len(ctx.redis.command("KEYS", ctx.prefix + "*"))
        w.stop()
        ctx2 = ctx  # same topics and group: the worker would take the partitions over
        ctx2.env.redis_url = f"redis://127.0.0.1:{bad_port}"
        bad = ctx2.worker("wrong-ca")
        time.sleep(6)
        code, body = readyz(bad.port)
        log = open(os.path.join(d, "stunnel-bad.log")).read()
        checks.check(bad.alive() and code == 503 and "redis" in body,
                     f"a sidecar with the wrong CA: worker up, /readyz {code} ({body.strip()})")
        checks.check(re.search(r"certificate verify failed|CERT_VERIFY|verify", log, re.I)
                     is not None, "stunnel logs the failed certificate verification")
        keys_after = len(ctx.redis.command("KEYS", ctx.prefix + "*"))
        checks.check(keys_after == keys_before,
                     f"nothing written through the refused sidecar ({keys_before} keys before, "
                     f"{keys_after} after)")
        bad.kill()
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
        for p in procs:
            p.kill()
            p.wait()
    checks.finish()


if __name__ == "__main__":
    main()
