// jsforce's streaming client (a third-party Salesforce client) against devorg.
//
// Usage: node jsforce_stream.js INSTANCE_URL ACCESS_TOKEN CHANNEL REPLAY_ID COUNT
// Prints {"subscribed": true} once subscribed, then one JSON line per event received,
// and exits after COUNT events.
'use strict';

const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');

const [instanceUrl, accessToken, channel, replayArg, countArg] = process.argv.slice(2);
const replayId = Number(replayArg);
const count = Number(countArg);

const conn = new jsforce.Connection({ instanceUrl, accessToken, version: '62.0' });
const client = conn.streaming.createClient([
  new StreamingExtension.Replay(channel, replayId),
  new StreamingExtension.AuthFailure((err) => {
    process.stdout.write(JSON.stringify({ authFailure: String(err && err.message) }) + '\n');
    process.exit(3);
  }),
]);

let received = 0;
const subscription = client.subscribe(channel, (message) => {
  process.stdout.write(JSON.stringify(message) + '\n');
  received += 1;
  if (received >= count) {
    client.disconnect();
    process.exit(0);
  }
});
subscription.then(
  () => process.stdout.write(JSON.stringify({ subscribed: true }) + '\n'),
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.message) }) + '\n');
    process.exit(2);
  },
);
