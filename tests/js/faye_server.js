// A real Faye (generic Bayeux) server for interop tests of ilyd's Bayeux client.
//
// Usage: node faye_server.js [timeoutSeconds]
// Listens on 127.0.0.1, port 0, and prints {"port": N} on stdout once ready.
// Bayeux endpoint: /cometd/59.0 (long polling and WebSocket). Test control (JSON):
//   POST /control/publish {channel, data}   publish an event through Faye itself
//   POST /control/forget                     destroy every client -> Faye's "401::Unknown client"
//   POST /control/reject-auth {count}        answer the next N connects with 401::Authentication invalid
//   POST /control/retain-from {replayId}    reject subscribes replaying from an older id
//   GET  /control/stats                      handshakes, transports used, tokens seen, clients
'use strict';

const http = require('http');
const faye = require('faye');

const timeout = Number(process.argv[2] || 5);
const bayeux = new faye.NodeAdapter({ mount: '/cometd/59.0', timeout: timeout });
const clients = new Set();
const stats = { handshakes: 0, connects: {}, tokens: [], subscribes: [] };
let rejectAuth = 0;
let retainedFrom = null;  // replay ids below this are 'out of retention'

bayeux.on('disconnect', (clientId) => { clients.delete(clientId); });

bayeux.addExtension({
  incoming(message, request, callback) {
    // Faye's in-process publisher has no request: only remote clients are counted.
    if (!request) { callback(message); return; }
    const auth = request.headers && request.headers.authorization;
    if (message.channel === '/meta/handshake') stats.handshakes += 1;
    if (message.clientId) clients.add(message.clientId);
    if (auth && !stats.tokens.includes(auth)) stats.tokens.push(auth);
    if (message.channel === '/meta/connect') {
      const type = message.connectionType || '?';
      stats.connects[type] = (stats.connects[type] || 0) + 1;
      if (rejectAuth > 0) {
        rejectAuth -= 1;
        message.error = '401::Authentication invalid';
      }
    }
    if (message.channel === '/meta/subscribe') {
      stats.subscribes.push({ subscription: message.subscription, ext: message.ext || null });
      const map = (message.ext && message.ext.replay) || {};
      const id = map[message.subscription];
      if (retainedFrom !== null && typeof id === 'number' && id >= 0 && id < retainedFrom) {
        message.error = `400::The replayId {${id}} you provided was invalid.  Please provide a ` +
          'valid ID, -2 to replay all events, or -1 to replay only new events.';
      }
    }
    callback(message);
  },
  outgoing(message, callback) {
    // Salesforce-style replay support announcement, as a Salesforce client expects it.
    if (message.channel === '/meta/handshake' && message.successful) {
      message.ext = Object.assign({}, message.ext, { replay: true });
    }
    callback(message);
  },
});

function readJson(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => { resolve(body ? JSON.parse(body) : {}); });
  });
}

function reply(res, obj) {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
}

const server = http.createServer(async (req, res) => {
  if (!req.url.startsWith('/control/')) {
    res.writeHead(404);
    res.end();
    return;
  }
  const body = await readJson(req);
  if (req.url === '/control/publish') {
    await bayeux.getClient().publish(body.channel, body.data);
    reply(res, { ok: true });
  } else if (req.url === '/control/forget') {
    const engine = bayeux._server._engine;
    const forgotten = Array.from(clients);
    for (const id of forgotten) engine.destroyClient(id);
    reply(res, { forgotten: forgotten.length });
  } else if (req.url === '/control/reject-auth') {
    rejectAuth = Number(body.count || 1);
    reply(res, { ok: true });
  } else if (req.url === '/control/retain-from') {
    retainedFrom = Number(body.replayId);
    reply(res, { ok: true });
  } else if (req.url === '/control/stats') {
    reply(res, Object.assign({ clients: clients.size }, stats));
  } else {
    res.writeHead(404);
    res.end();
  }
});

bayeux.attach(server);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
