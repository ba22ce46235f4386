"""A process SIGKILLed while writing loses nothing it committed, and half a write is none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ilyd.store import Database
from ilyd.store.inbox import Inbox

_WRITER = """
import sys
from ilyd.store import Database
from ilyd.store.inbox import Inbox, InboxEntry
inbox = Inbox(Database(sys.argv[1]))
n = 0
while True:
    n += 1
    entries = [InboxEntry("Lead", f"00Q{n:06d}{k}", {"n": n}) for k in range(3)]
    inbox.put("acme", entries, channel="/topic/IlyLeads", replay_id=n)
    print(n, flush=True)
"""


def test_sigkill_mid_write_keeps_inbox_and_replay_id_consistent(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    last_printed = 0
    try:
        for line in proc.stdout:
            last_printed = int(line)
            if last_printed >= 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert last_printed >= 300, "writer died before writing"

    db = Database(path)
    inbox = Inbox(db)
    stored = inbox.replay.get("acme", "/topic/IlyLeads")
    assert stored is not None
    # every acknowledged write survived, and nothing past the stored replay id exists
    assert stored >= last_printed
    seen = sorted({int(item.fields["n"]) for item in inbox.pending("acme")})
    assert seen == list(range(1, stored + 1))
    assert inbox.depth("acme") == 3 * stored
    db.close()
