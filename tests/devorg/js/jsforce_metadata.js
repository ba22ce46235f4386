// jsforce's Metadata API against devorg over plain HTTP: read a layout, add a section
// with a field created through the Metadata API, update, read back, list layouts, deploy
// a zip (base64 in DEVORG.zip) and check its status.
const jsforce = require("jsforce");

async function main() {
  const cfg = JSON.parse(process.env.DEVORG);
  const conn = new jsforce.Connection({
    oauth2: { clientId: cfg.client_id, clientSecret: cfg.client_secret, loginUrl: cfg.url },
    instanceUrl: cfg.url,
    accessToken: cfg.access_token,
    version: "59.0",
  });
  const created = await conn.metadata.create("CustomField", {
    fullName: "Lead.Ily_Domain__c", label: "Ily Domain", type: "Text", length: 255,
  });
  const layout = await conn.metadata.read("Layout", "Lead-Lead Layout");
  layout.layoutSections.push({
    label: "Ily Enrichment", customLabel: true, detailHeading: true, editHeading: true,
    style: "TwoColumnsTopToBottom",
    layoutColumns: [{ layoutItems: [{ field: "Ily_Domain__c", behavior: "Readonly" }] }, {}],
  });
  const updated = await conn.metadata.update("Layout", layout);
  const again = await conn.metadata.read("Layout", "Lead-Lead Layout");
  const listed = await conn.metadata.list([{ type: "Layout" }]);
  let fault = null;
  try {
    await conn.metadata.read("ApexClass", "Nope");
  } catch (err) {
    fault = err.name + ": " + err.message;
  }
  const queued = await conn.metadata.deploy(cfg.zip, { rollbackOnError: true });
  const deployed = await conn.metadata.checkDeployStatus(queued.id, true);
  process.stdout.write(JSON.stringify({
    deployed: [queued.state, deployed.status, deployed.numberComponentsDeployed],
    created: created.success,
    updated: updated.success,
    sections: again.layoutSections.map((s) => s.label),
    last: again.layoutSections[again.layoutSections.length - 1],
    listed: listed.map((p) => p.fullName).sort(),
    fault,
  }));
}

main().catch((err) => { console.error(err); process.exit(1); });
