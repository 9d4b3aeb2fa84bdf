#!/usr/bin/env python3
"""The soak driver for bench/soak.sh (standard library only).

  soak.py run BROKER KEY INFO_JSON SECONDS PID OUT_JSON

Drives `forcelink serve` (process PID) for SECONDS with mixed load — cached tokens, the proxy,
an action and the signed-in web page — while arming faults in the playground (delays, 503s,
Salesforce's 500, truncated bodies, dropped connections, HTML maintenance pages) and expiring
its sessions now and then, so renewals meet the faults too. Writes what it saw to OUT_JSON:
answers by route and status, errors by type, RSS and open descriptors at the start and the end.
An "untyped" error is a broker answer of 4xx/5xx that is not its JSON error with a `code`
(proxied answers are Salesforce's own and counted apart).
"""
import http.client
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlencode, urlparse

LOCK = threading.Lock()
ANSWERS = Counter()   # (route, status)
ERRORS = Counter()    # error type
SENT = Counter()      # route -> requests sent


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def classify(route, status, body, headers):
    if status < 400:
        return None
    try:
        code = json.loads(body)["error"]["code"]
        return f"broker {status} {code}"
    except (ValueError, KeyError, TypeError):
        pass
    if route == "proxy":
        # The org's own answer, passed through.
        try:
            doc = json.loads(body)
            code = doc[0].get("errorCode") if isinstance(doc, list) and doc else None
        except (ValueError, AttributeError):
            code = None
        return f"org {status} {code or ('html' if body.lstrip()[:1] == b'<' else 'other')}"
    if route == "page" and status < 500:
        return f"page {status}"
    return f"UNTYPED {status}"


class Client:
    def __init__(self, base):
        u = urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=90)
            try:
                self.conn.request(method, path, body, headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data, {k.lower(): v for k, v in r.getheaders()}
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, b"", {}
        return 0, b"", {}


def record(route, status, body, headers):
    kind = classify(route, status, body, headers) if status else "connection lost (client side)"
    with LOCK:
        SENT[route] += 1
        ANSWERS[(route, status)] += 1
        if kind:
            ERRORS[kind] += 1


def worker(broker, key, username, route, stop):
    c = Client(broker)
    auth = {"Authorization": f"Bearer {key}"}
    cookie = None
    while not stop.is_set():
        if route == "token":
            s, b, h = c.request("GET", "/v1/connections/soak/token", headers=auth)
        elif route == "proxy":
            path = random.choice(["/services/data/v64.0/limits", "/services/data/v64.0/query?q=SELECT+Id+FROM+Account+LIMIT+5"])
            s, b, h = c.request("GET", "/v1/connections/soak/sf" + path, headers=auth)
        elif route == "action":
            body = json.dumps({"user": username, "fields": {"Title": f"soak {random.randint(0, 9999)}"}})
            s, b, h = c.request("POST", "/v1/connections/soak/actions/update-user", body,
                                dict(auth, **{"Content-Type": "application/json"}))
        else:  # the signed-in page
            if cookie is None:
                s, b, h = c.request("GET", "/login")
                token = re.search(rb'name="csrf" value="([^"]+)"', b)
                login_cookie = h.get("set-cookie", "").split(";")[0]
                if not token:
                    record("page", s or 599, b, h)
                    time.sleep(0.05)
                    continue
                form = urlencode({"csrf": token.group(1).decode(), "key": key})
                s, b, h = c.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                               "Cookie": login_cookie})
                got = re.search(r"forcelink_session=[^;]+", h.get("set-cookie", ""))
                cookie = got.group(0) if got else None
                record("page", s, b, h)
                continue
            s, b, h = c.request("GET", random.choice(["/", "/connections/soak"]), headers={"Cookie": cookie})
        record(route, s, b, h)


def faults(info, stop):
    c = Client(info["control_url"])
    base = urlparse(info["control_url"]).path.rstrip("/")
    auth = {"Authorization": f"Bearer {info['control_key']}", "Content-Type": "application/json"}
    kinds = [
        {"kind": "delay", "delay_ms": 1500},
        {"kind": "status", "status": 503, "body": "{\"message\":\"busy\"}"},
        {"kind": "status", "status": 500, "preset": "unknown_exception"},
        {"kind": "truncate"},
        {"kind": "drop"},
        {"kind": "html"},
    ]
    n = 0
    while not stop.wait(0.5):
        n += 1
        fault = dict(random.choice(kinds), path_prefix=random.choice(["/services/data", "/services/oauth2/token"]),
                     count=random.randint(1, 4))
        c.request("POST", f"{base}/faults", json.dumps(fault), auth)
        with LOCK:
            ERRORS[f"(faults armed: {fault['kind']})"] += 1
        if n % 20 == 0:  # every 10 s: the org forgets its sessions, so the broker must renew
            c.request("POST", f"{base}/sessions/expire", "{}", auth)


def run(broker, key, info_path, seconds, pid, out):
    info = json.load(open(info_path))
    start = {"rss_mib": rss_mib(pid), "fds": fds(pid)}
    stop = threading.Event()
    threads = [threading.Thread(target=faults, args=(info, stop), daemon=True)]
    for route, count in (("token", 3), ("proxy", 2), ("action", 1), ("page", 1)):
        for _ in range(count):
            threads.append(threading.Thread(target=worker, args=(broker, key, info["user"]["username"], route, stop),
                                            daemon=True))
    began = time.time()
    for t in threads:
        t.start()
    samples = []
    while time.time() - began < seconds:
        time.sleep(min(30, max(0.1, seconds - (time.time() - began))))
        samples.append({"at_s": round(time.time() - began), "rss_mib": rss_mib(pid), "fds": fds(pid)})
    stop.set()
    for t in threads:
        t.join(timeout=120)
    end = {"rss_mib": rss_mib(pid), "fds": fds(pid)}
    json.dump({
        "seconds": seconds,
        "start": start,
        "end": end,
        "samples": samples,
        "sent": dict(SENT),
        "answers": {f"{r} {s}": n for (r, s), n in sorted(ANSWERS.items())},
        "errors": dict(ERRORS.most_common()),
    }, open(out, "w"), indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[1] != "run":
        sys.exit(__doc__)
    run(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
