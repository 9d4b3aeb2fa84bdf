#!/usr/bin/env python3
"""The broker's event relay, measured end to end (a playground and `forcelink serve` in separate processes): Accounts written at the playground (REST
collections, 200 per call) → change events → a subscription → verified-format deliveries at a
local receiver. Prints markdown tables: events/s and delivery latency (commit → arrival, p50/p99),
then broker memory while the receiver is down and QUEUED events wait in the outbox, and the time
to drain them once it is back. Standard library only; run through bench/relay.sh.

Usage: relay.py FORCELINK_BINARY WORKDIR EVENTS QUEUED
"""
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request

BIN, WORK, EVENTS, QUEUED = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def say(msg):
    print(msg, file=sys.stderr, flush=True)


class Receiver:
    def __init__(self):
        self.down = False
        self.arrivals = {}  # webhook-id -> (arrival time, commit timestamp ms)
        self.lock = threading.Lock()


R = Receiver()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if R.down:
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        now = time.time()
        msg = json.loads(body)
        commit = msg.get("data", {}).get("change", {}).get("commit_timestamp", 0)
        with R.lock:
            R.arrivals.setdefault(self.headers["webhook-id"], (now, commit))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def request(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/events"
    rport = server.server_address[1]
    pg_info = os.path.join(WORK, "playground.json")
    env = dict(os.environ, XDG_DATA_HOME=os.path.join(WORK, "data"), XDG_CONFIG_HOME=os.path.join(WORK, "config"))
    # The playground in its own process, so the broker's memory is its own.
    playground = subprocess.Popen(
        [BIN, "playground", "--port", "0", "--instance-port", "0", "--pubsub-port", "0", "--info-file", pg_info,
         "--key-dir", os.path.join(WORK, "keys")],
        stdout=open(os.path.join(WORK, "playground.out"), "w"), stderr=subprocess.STDOUT, env=env)
    procs = [playground]
    try:
        for _ in range(600):
            if os.path.exists(pg_info) and os.path.getsize(pg_info) > 0:
                break
            time.sleep(0.1)
        pg = json.load(open(pg_info))
        allow = ",".join([pg["instance_url"], "http://" + pg["pubsub_endpoint"], f"http://127.0.0.1:{rport}"])
        env.update(FORCELINK_ALLOW_ORIGINS=allow, CS=pg["client"]["client_secret"])
        subprocess.run([BIN, "connection", "add", "pg", "--method", "client-credentials", "--login-url",
                        pg["instance_url"], "--client-id", pg["client"]["client_id"], "--client-secret", "env:CS",
                        "--pubsub-endpoint", pg["pubsub_endpoint"]], env=env, check=True, capture_output=True)
        key = json.loads(subprocess.run([BIN, "apikey", "create", "--name", "bench", "--connections", "*", "--scopes",
                                         "*", "--json"], env=env, check=True, capture_output=True).stdout)["result"]["key"]
        broker = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(WORK, "serve.err"), "w"), env=env, text=True)
        procs.append(broker)
        base = None
        for line in broker.stdout:
            if line.strip().startswith("page"):
                base = line.split(None, 1)[1].strip().rstrip("/")
            if line.strip() == "ready":
                break
        threading.Thread(target=lambda: [None for _ in broker.stdout], daemon=True).start()
        control = pg["control_url"]
        request("PATCH", f"{control}/pubsub/settings", pg["control_key"], {"keepalive_ms": 200})
        request("PATCH", f"{control}/settings", pg["control_key"], {"daily_api_requests": 1000000000})
        tok = json.loads(urllib.request.urlopen(urllib.request.Request(
            pg["instance_url"] + "/services/oauth2/token",
            data=urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": pg["client"]["client_id"],
                                         "client_secret": pg["client"]["client_secret"]}).encode())).read())["access_token"]
        created = request("POST", f"{base}/v1/subscriptions", key, {
            "connection": "pg", "topic": "/data/AccountChangeEvent", "webhook": {"url": receiver_url}})
        sid = created["id"]
        for _ in range(300):
            if request("GET", f"{base}/v1/subscriptions/{sid}", key).get("position"):
                break
            time.sleep(0.1)
        data = pg["instance_url"] + "/services/data/v66.0/composite/sobjects"

        def write(n, prefix):
            for start in range(0, n, 200):
                recs = [{"attributes": {"type": "Account"}, "Name": f"{prefix}-{i}"} for i in range(start, min(n, start + 200))]
                request("POST", data, tok, {"allOrNone": True, "records": recs})

        # Latency one event at a time: write one change, wait for it at the receiver.
        say("one change at a time")
        single = []
        for i in range(200):
            before = len(R.arrivals)
            t = time.time()
            write(1, f"single-{i}")
            while len(R.arrivals) == before:
                time.sleep(0.0005)
            single.append((max(a for a, _ in R.arrivals.values()) - t) * 1000.0)
        print("| one change at a time | write → verified arrival p50 (ms) | p99 (ms) |")
        print("|---|---:|---:|")
        print(f"| 200 changes | {pct(single, 0.5):.1f} | {pct(single, 0.99):.1f} |")
        print()
        R.arrivals.clear()

        # Throughput, and latency in a burst (queueing included).
        say(f"writing {EVENTS} Accounts")
        t0 = time.time()
        write(EVENTS, "relay")
        written = time.time() - t0
        deadline = time.time() + 600
        while len(R.arrivals) < EVENTS and time.time() < deadline:
            time.sleep(0.05)
        got = dict(R.arrivals)
        last = max(a for a, _ in got.values())
        lat = [(a - c / 1000.0) * 1000.0 for a, c in got.values() if c]
        mem_steady = rss_kib(broker.pid)
        print("| burst of events | delivered | write time (s) | end to end (s) | events/s | commit → arrival p50 (ms) | p99 (ms) | broker RSS (MiB) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {EVENTS} | {len(got)} | {written:.1f} | {last - t0:.1f} | {len(got) / (last - t0):,.0f} | "
              f"{pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | {mem_steady['VmRSS'] / 1024:.0f} |")
        print()

        # The receiver is down while QUEUED events arrive.
        R.down = True
        before = len(R.arrivals)
        say(f"receiver down; writing {QUEUED} Accounts")
        write(QUEUED, "queued")
        for _ in range(1200):
            v = request("GET", f"{base}/v1/subscriptions/{sid}", key)
            if v["lag"] >= QUEUED:
                break
            time.sleep(0.5)
        lag = v["lag"]
        mem_down = rss_kib(broker.pid)
        R.down = False
        t1 = time.time()
        deadline = time.time() + 3600
        while len(R.arrivals) < before + QUEUED and time.time() < deadline:
            time.sleep(0.2)
        drained = time.time() - t1
        mem_after = rss_kib(broker.pid)
        print("| queued while the receiver was down | lag seen | broker RSS before (MiB) | RSS with the backlog (MiB) | peak RSS (MiB) | drain time (s) | drain events/s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {QUEUED} | {lag} | {mem_steady['VmRSS'] / 1024:.0f} | {mem_down['VmRSS'] / 1024:.0f} | "
              f"{mem_after['VmHWM'] / 1024:.0f} | {drained:.1f} | {QUEUED / drained:,.0f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


import urllib.parse  # noqa: E402

main()
