"""devorg: a local Salesforce org emulator. It never imports the daemon."""
