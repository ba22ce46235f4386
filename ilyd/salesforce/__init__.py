"""Plain Salesforce clients (OAuth, REST, Tooling, Bulk 2.0, Bayeux); no actors here."""
