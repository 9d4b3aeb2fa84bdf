// The jsforce row of bench/query-stream.sh: signs in to a playground with SOAP login()
// (username, password + security token), runs the query with autoFetch (maxFetch raised to the
// expected count, so it does not stop at its default 10,000) and prints one JSON line with the
// record count, the time of the query (sign-in excluded), records/s and this process's peak RSS.
//
//   NODE_PATH=<peers>/node/node_modules node jsforce_query.js INFO_FILE SOQL BATCH MAX_FETCH
"use strict";
const fs = require("fs");
const jsforce = require("jsforce");

(async () => {
  const [infoFile, soql, batch, maxFetch] = process.argv.slice(2);
  const info = JSON.parse(fs.readFileSync(infoFile, "utf8"));
  const conn = new jsforce.Connection({ loginUrl: info.login_url, version: "64.0" });
  await conn.login(info.user.username, info.user.password + info.user.security_token);
  const start = process.hrtime.bigint();
  const result = await conn.query(soql, {
    autoFetch: true,
    maxFetch: Number(maxFetch),
    headers: { "Sforce-Query-Options": `batchSize=${batch}` },
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const records = result.records.length;
  console.log(JSON.stringify({ mode: "jsforce", records, seconds, records_per_s: records / seconds,
    peak_rss_kib: process.resourceUsage().maxRSS }));
})().catch((e) => { console.error(e); process.exit(1); });
