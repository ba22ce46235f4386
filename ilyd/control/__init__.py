"""`ilyd ctl` and the daemon's control socket: the protocol (`protocol`), the server
(`server`), the client (`client`), the daemon's own verbs (`verbs`), and how results read
(`render`, `cli`). Capabilities export their verbs from their own packages."""
