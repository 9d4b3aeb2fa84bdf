#!/usr/bin/env python3
"""The playground's own Bulk API 2.0 speed, for bench/bulk.sh (standard library only).

Usage: bulk_raw.py INFO_FILE PLAYGROUND_PID QUERY_ROWS CSV_FILE...

* ingest processing: for each CSV file, an insert job is created and the file uploaded in one
  request; the clock starts when `UploadComplete` is answered and stops when a poll (every 5 ms)
  sees `JobComplete`. Also reported: the job's own `totalProcessingTime` and the playground's
  CPU time (user + system, from /proc) over the same span.
* query result pages: a query job of QUERY_ROWS Accounts, then every result page (the default
  page size) fetched over one keep-alive connection without parsing, as the raw query-page row
  of bench/query-pages.sh does for REST pages.

Prints one JSON line per measurement on stdout.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse

SOQL = "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main():
    info_file, pid, query_rows, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    info = json.load(open(info_file))
    u = urllib.parse.urlparse(info["instance_url"])
    conn = http.client.HTTPConnection(u.hostname, u.port)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": info["client"]["client_id"],
                                   "client_secret": info["client"]["client_secret"]})
    conn.request("POST", "/services/oauth2/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(conn.getresponse().read())["access_token"]
    base = "/services/data/v66.0/jobs"

    def call(method, path, body=None, ctype="application/json"):
        headers = {"Authorization": "Bearer " + token}
        if body is not None:
            headers["Content-Type"] = ctype
        conn.request(method, path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            sys.exit(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return resp, data

    for path in files:
        body = open(path, "rb").read()
        rows = body.count(b"\n") - 1
        _, data = call("POST", base + "/ingest",
                       json.dumps({"object": "Account", "operation": "insert", "contentType": "CSV",
                                   "lineEnding": "LF"}))
        job = json.loads(data)["id"]
        call("PUT", f"{base}/ingest/{job}/batches", body, "text/csv")
        cpu0 = cpu_seconds(pid)
        call("PATCH", f"{base}/ingest/{job}", json.dumps({"state": "UploadComplete"}))
        t0 = time.perf_counter()
        while True:
            _, data = call("GET", f"{base}/ingest/{job}")
            state = json.loads(data)
            if state["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            time.sleep(0.005)
        secs = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        if state["state"] != "JobComplete" or state["numberRecordsProcessed"] != rows:
            sys.exit(f"ingest job {job}: {state}")
        print(json.dumps({"mode": "ingest", "records": rows, "failed": state["numberRecordsFailed"],
                          "seconds": secs, "cpu_seconds": cpu,
                          "processing_ms": state.get("totalProcessingTime", 0)}))

    _, data = call("POST", base + "/query",
                   json.dumps({"operation": "query", "query": f"{SOQL} LIMIT {query_rows}"}))
    job = json.loads(data)["id"]
    while True:
        _, data = call("GET", f"{base}/query/{job}")
        state = json.loads(data)["state"]
        if state == "JobComplete":
            break
        if state in ("Failed", "Aborted"):
            sys.exit(f"query job {job}: {state}")
        time.sleep(0.005)
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    locator, pages, seen, size = None, 0, 0, 0
    while True:
        q = f"?locator={locator}" if locator else ""
        resp, data = call("GET", f"{base}/query/{job}/results{q}")
        pages += 1
        size += len(data)
        seen += int(resp.getheader("Sforce-NumberOfRecords"))
        locator = resp.getheader("Sforce-Locator")
        if not locator or locator == "null":
            break
    secs = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    if seen != query_rows:
        sys.exit(f"query results: saw {seen} rows, expected {query_rows}")
    print(json.dumps({"mode": "results", "records": seen, "pages": pages, "bytes": size, "seconds": secs,
                      "cpu_seconds": cpu}))


main()
