"""The complete database sync (`ilyd ctl resync ORG`): Bulk API 2.0 read, enrich, compare,
Bulk 2.0 write, checkpointed so a killed daemon resumes without skipping or re-sending.

Plain classes, no actors: `ilyd.actors.resync.ResyncComponent` runs `ilyd.resync.engine.Resync`
in its thread. Nothing is imported here: `ilyd ctl` loads `ilyd.resync.render` and must
start fast.
"""
