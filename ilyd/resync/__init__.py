"""The complete database sync (`ilyd ctl resync ORG`): Bulk API 2.0 read, enrich, compare,
Bulk 2.0 write, checkpointed so a killed daemon resumes without skipping or re-sending.

Plain classes, no actors: `ilyd.actors.resync.ResyncActor` runs `Resync` in its thread.
"""

from ilyd.resync.engine import Resync, ResyncRequest, ResyncSettings
from ilyd.resync.progress import Phase, ResyncProgress

__all__ = ["Phase", "Resync", "ResyncProgress", "ResyncRequest", "ResyncSettings"]
