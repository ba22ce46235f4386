"""The real-time writer's window, following the org's API budget.

A queued record waits at most `writer_window` for others to share its call while the org's
daily API allowance has room. When the writer's projected daily use would pass
`api_share` of that allowance, the window widens — up to `writer_window_max` — so that
fewer, fuller calls keep it within the share; it narrows back once there is room again.
Latency is spent only when calls are scarce.

Projected daily use is the writer's own recent call rate, not the org's usage trend: the
`Sforce-Limit-Info` count moves with every other integration's calls, which a wider window
cannot slow down (the org-wide `api_budget_ratio` throttle guards that total). The rate
is an exponentially weighted average of the writer's calls (each flush's Collections
calls and reads) with a time constant of `HORIZON`, so a burst of a few minutes barely
moves it and a steady rate shows within minutes. That rate held for a day, over the
org's daily allowance (`Usage.max`), is the projected use. A new writer starts from no
calls: a restarted daemon forgets what its previous run spent.

A batch is held until sending it — at the cost of the last flush's calls — keeps the
projection within the share. Once the hold would reach `writer_window_max` (an allowance
too small for the traffic) the batch goes at the widest window, and the projection may
pass the share; `api_budget_ratio` still stops the org before the allowance is spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["DAY", "HORIZON", "WriterWindow"]

DAY = 86_400.0
# Long enough that a short burst is not taken for the day's pace, short enough that a
# steady rate beyond the share widens the window within minutes.
HORIZON = 900.0


class WriterWindow:
    """How long the writer holds a batch, from its own call rate and the org's allowance.

    Plain logic, not thread-safe: the writer's owner calls it. `allowance()` is the org's
    daily allowance (`Usage.max`), None before Salesforce reported it.
    """

    def __init__(self, base: float, widest: float, share: float,
                 allowance: Callable[[], int | None], *,
                 clock: Callable[[], float] = time.time, horizon: float = HORIZON) -> None:
        self.base = base
        self.widest = max(base, widest)
        self.share = share
        self.horizon = horizon
        self._allowance = allowance
        self._clock = clock
        self._rate = 0.0  # calls per second, as of `_at`
        self._at = clock()
        self._cost = 1  # calls the next flush is expected to take: the last one's

    def spent(self, calls: int) -> None:
        """Count the calls one flush took."""
        now = self._clock()
        self._rate = self._rate_at(now) + calls / self.horizon
        self._at = now
        if calls:
            self._cost = calls

    def projected(self) -> float | None:
        """The writer's projected daily use as a share of the org's allowance (0.2: a
        fifth), None while the allowance is unknown."""
        allowance = self._allowance()
        if not allowance:
            return None
        return self._rate_at(self._clock()) * DAY / allowance

    def hold(self) -> float:
        """Seconds from now until a flush keeps the projection within the share (0: at
        once), at most `widest`."""
        allowance = self._allowance()
        if not allowance:
            return 0.0
        rate = self._rate_at(self._clock())
        # The rate a flush may start from so that its calls leave it at the share.
        start = self.share * allowance / DAY - self._cost / self.horizon
        if rate <= start:
            return 0.0
        if start <= 0.0:  # not even one flush per horizon fits the share
            return self.widest
        return min(self.widest, self.horizon * math.log(rate / start))

    def current(self) -> float:
        """The window now: how long a record queued now may wait for its call."""
        return min(self.widest, max(self.base, self.hold()))

    def _rate_at(self, now: float) -> float:
        if now <= self._at:
            return self._rate
        return self._rate * math.exp(-(now - self._at) / self.horizon)
