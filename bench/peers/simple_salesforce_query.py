"""The simple-salesforce row of bench/query-stream.sh: signs in to a playground with SOAP login()
(username, password + security token), runs `query_all(SOQL)` and prints one JSON line with the
record count, the time of the query (sign-in excluded), records/s and this process's peak RSS.

    PYTHONPATH=<peers>/python python3 simple_salesforce_query.py INFO_FILE SOQL BATCH

simple-salesforce only speaks HTTPS, to https://login.salesforce.com and then to the instance
host from the login answer's serverUrl; the session below sends those requests to the
playground's plain-HTTP loopback hosts instead (paths, headers and bodies unchanged).
"""

import json
import resource
import sys
import time

import requests
from simple_salesforce import Salesforce

info = json.load(open(sys.argv[1]))
soql, batch = sys.argv[2], int(sys.argv[3])
LOGIN = "https://login.salesforce.com"
INSTANCE_HOST = info["instance_url"].split("://", 1)[1]


class Routed(requests.Session):
    def request(self, method, url, *args, **kwargs):
        if url.startswith(LOGIN):
            url = info["login_url"] + url[len(LOGIN):]
        elif url.startswith("https://" + INSTANCE_HOST) and info["instance_url"].startswith("http://"):
            url = "http://" + url[len("https://"):]
        return super().request(method, url, *args, **kwargs)


user = info["user"]
sf = Salesforce(username=user["username"], password=user["password"], security_token=user["security_token"],
                session=Routed(), version="64.0")
start = time.perf_counter()
result = sf.query_all(soql, headers={"Sforce-Query-Options": f"batchSize={batch}"})
seconds = time.perf_counter() - start
records = len(result["records"])
print(json.dumps({"mode": "simple-salesforce", "records": records, "seconds": seconds,
                  "records_per_s": records / seconds,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
