// The Node upstream of tests/differential.rs: the bare `http` module, answering every request
// with one JSON line saying what a typical Node app routes on.
//
// Why decodeURIComponent(new URL(req.url, base).pathname): Node hands the app the raw target
// (req.url); apps and routers parse it with the WHATWG URL parser, which treats "\" as "/",
// resolves "." and ".." segments, including encoded ones like "%2e%2e", and drops a
// "#fragment"; routers then match on the decoded segments. A path that does not decode
// (bad UTF-8) is a 400, as routers answer.
//
// Usage: node echo.js PORT
'use strict';
const http = require('http');

const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

const server = http.createServer((req, res) => {
  let url;
  let path;
  try {
    url = new URL(req.url, 'http://x');
    path = decodeURIComponent(url.pathname);
  } catch (e) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end(`bad request target: ${e.message}\n`);
    return;
  }
  let override = null;
  for (const h of OVERRIDE_HEADERS) {
    if (override === null && req.headers[h] !== undefined) {
      override = req.headers[h];
    }
  }
  // Rails/Laravel/Symfony-style "_method" (express's method-override can be set to read
  // it): whether the app honours it is not something a gate in front can know.
  if (override === null && url.searchParams.has('_method')) {
    override = url.searchParams.get('_method');
  }
  const body = JSON.stringify({
    server: 'node',
    method: req.method,
    path,
    raw: req.url,
    override,
    role: req.headers['x-keysmith-role'] ?? null,
  }) + '\n';
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
});

server.listen(Number(process.argv[2]), '127.0.0.1');
