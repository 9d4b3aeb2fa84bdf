// A stand-in for a workflow tool, for the browser test: the page a connect link returns to
// (GET /done shows the outcome from its query), a webhook receiver (POST /hook, answers 204)
// and the deliveries it received (GET /received, JSON). Listens on a free loopback port and
// prints it, so run.sh can allow exactly this origin with --allow-origin before the broker starts.
import http from 'node:http';

const received = [];
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'POST' && url.pathname === '/hook') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/done') {
    const rows = [...url.searchParams].map(([k, v]) => `<tr><th>${escape(k)}</th><td data-param="${escape(k)}">${escape(v)}</td></tr>`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Workflow tool</title><h1>Back in the workflow tool</h1><table>${rows.join('')}</table>`);
    return;
  }
  if (req.method === 'GET' && url.pathname === '/received') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(received));
    return;
  }
  res.writeHead(404).end();
});

server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
