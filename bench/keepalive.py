#!/usr/bin/env python3
"""Helpers for bench/keepalive.sh (standard library only).

  keepalive.py receive PORT OUT       a webhook receiver on 127.0.0.1:PORT: answers 204 at once and
                                      appends "<arrival epoch seconds> <webhook-id> <event timestamp>"
                                      per delivery to OUT
  keepalive.py create BROKER KEY PREFIX N THREADS LOGIN_URL CLIENT_ID CLIENT_SECRET [--token]
                                      creates N client-credentials connections PREFIX0..N-1 over
                                      keep-alive connections from THREADS threads (with --token, asks
                                      each for a token afterwards, so it counts as used); prints the
                                      requests per second
  keepalive.py tokens BROKER KEY PREFIX N THREADS
                                      asks each of PREFIX0..N-1 for a token (so each counts as used)
  keepalive.py latency FILE [SKIP]    prints "count p50_ms p99_ms first last" of the receiver's log,
                                      leaving out its first SKIP lines
  keepalive.py rss PID                prints the process's resident memory in MiB
  keepalive.py cpu PID                prints the process's user+system CPU seconds
"""
import http.client
import http.server
import json
import os
import socketserver
import sys
import threading
import time
from datetime import datetime
from urllib.parse import urlparse


def receive(port, out):
    lock = threading.Lock()
    log = open(out, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            now = time.time()
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            stamp = json.loads(body).get("timestamp", "")
            with lock:
                log.write(f"{now:.6f} {self.headers.get('webhook-id')} {stamp}\n")
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 512

    Server(("127.0.0.1", port), Handler).serve_forever()


def create(broker, key, prefix, n, threads, login_url, client_id, client_secret, token):
    u = urlparse(broker)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    failures = []

    def work(start):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        for i in range(start, n, threads):
            body = json.dumps({"name": f"{prefix}{i}", "method": "client-credentials", "environment": "custom",
                               "login_url": login_url, "client_id": client_id, "client_secret": client_secret})
            conn.request("POST", "/v1/connections", body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                failures.append(f"create {prefix}{i}: {r.status}")
            if token:
                conn.request("GET", f"/v1/connections/{prefix}{i}/token", headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append(f"token {prefix}{i}: {r.status}")
        conn.close()

    began = time.time()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    took = time.time() - began
    if failures:
        sys.exit(f"{len(failures)} requests failed, e.g. {failures[:3]}")
    print(f"{n / took:.0f}")


def tokens(broker, key, prefix, n, threads):
    u = urlparse(broker)
    headers = {"Authorization": f"Bearer {key}"}
    failures = []

    def work(start):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        for i in range(start, n, threads):
            conn.request("GET", f"/v1/connections/{prefix}{i}/token", headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failures.append(f"token {prefix}{i}: {r.status}")
        conn.close()

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        sys.exit(f"{len(failures)} requests failed, e.g. {failures[:3]}")


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            print(f"{int(line.split()[1]) / 1024:.0f}")


def latency(path, skip=0):
    rows = []
    for n, line in enumerate(open(path)):
        if n < skip:
            continue
        arrival, _, stamp = line.split(" ", 2)
        sent = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00")).timestamp()
        rows.append((float(arrival), (float(arrival) - sent) * 1000))
    if not rows:
        sys.exit("no deliveries arrived")
    lat = sorted(ms for _, ms in rows)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    arrivals = [a for a, _ in rows]
    print(f"{len(rows)} {pick(0.5):.1f} {pick(0.99):.1f} {min(arrivals):.6f} {max(arrivals):.6f}")


def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    print(f"{(int(fields[11]) + int(fields[12])) / ticks:.2f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "receive":
        receive(int(args[0]), args[1])
    elif cmd == "create":
        create(args[0], args[1], args[2], int(args[3]), int(args[4]), args[5], args[6], args[7], "--token" in args)
    elif cmd == "tokens":
        tokens(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif cmd == "latency":
        latency(args[0], int(args[1]) if len(args) > 1 else 0)
    elif cmd == "rss":
        rss(args[0])
    elif cmd == "cpu":
        cpu(args[0])
    else:
        sys.exit(__doc__)
