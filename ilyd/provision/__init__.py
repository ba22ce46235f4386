"""Installing ilyd into an org: the preflight checks, the Ily fields, field-level security,
the PushTopics, the org's mode, and sandbox-refresh detection.

Plain classes over a `RestClient`; the actor (`ilyd.actors.provisioner`) and the commands
(`ilyd check`, `ilyd ctl provision`, `ilyd fields package`) are thin shells around
`ilyd.provision.service.Provisioner`.
"""
