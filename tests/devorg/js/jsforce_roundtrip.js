// jsforce against devorg over plain HTTP: log in with a refresh token (the access token
// starts out invalid, so jsforce must refresh on the 401), query, update several records.
const jsforce = require("jsforce");

async function main() {
  const cfg = JSON.parse(process.env.DEVORG);
  const conn = new jsforce.Connection({
    oauth2: { clientId: cfg.client_id, clientSecret: cfg.client_secret, loginUrl: cfg.url },
    instanceUrl: cfg.url,
    accessToken: "expired",
    refreshToken: cfg.refresh_token,
    version: "59.0",
  });
  const result = await conn.query("SELECT Id, Name FROM Account");
  const updates = result.records.map((r) => ({ Id: r.Id, Website: "js.test" }));
  const saved = await conn.sobject("Account").update(updates, { allOrNone: true });
  const check = await conn.query("SELECT Website FROM Account");
  process.stdout.write(JSON.stringify({
    queried: result.totalSize,
    updated: saved.map((s) => s.success),
    websites: check.records.map((r) => r.Website),
  }));
}

main().catch((err) => { console.error(err); process.exit(1); });
