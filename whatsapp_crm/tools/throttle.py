"""Pure-Python rate limiting of outbound WhatsApp messages.

Two limits apply to every message, both enforced with GCRA (the "generic cell rate
algorithm", an exact token bucket kept as one timestamp per key):

* per account: at most ``throughput_limit`` messages per second, no burst;
* per recipient (Meta's *pair rate*): one message every ``spacing`` seconds on average,
  with up to ``burst`` messages at once. In any interval of length ``d`` a recipient gets
  at most ``burst + d / spacing`` messages; ``burst=1`` means strictly one per ``spacing``.

Times are floats in seconds from an injectable monotonic clock, so tests can use a
fake clock.
"""

import time


class RateLimiter:
    """GCRA limiter: ``interval`` seconds between messages per key, ``burst`` at once."""

    def __init__(self, interval, burst=1):
        self.interval = max(float(interval), 0.0)
        self.tolerance = max(int(burst) - 1, 0) * self.interval
        self._tat = {}  # key -> theoretical arrival time of the next message

    def ready_at(self, key):
        """Earliest time a message to ``key`` conforms."""
        tat = self._tat.get(key)
        return float("-inf") if tat is None else tat - self.tolerance

    def consume(self, key, at):
        """Record a message to ``key`` sent at time ``at``."""
        self._tat[key] = max(self._tat.get(key, at), at) + self.interval


class Throttle:
    """Account throughput and recipient pair rate together.

    ``accounts``: ``{account_key: messages_per_second}``.
    """

    def __init__(self, accounts, pair_spacing, pair_burst, clock=time.monotonic):
        self.clock = clock
        self._accounts = {key: RateLimiter(1.0 / rate) for key, rate in accounts.items()}
        self._pairs = RateLimiter(pair_spacing, pair_burst)

    def seed(self, recipient, seconds_ago):
        """Account for a message sent to ``recipient`` ``seconds_ago`` (e.g. by an earlier run)."""
        self._pairs.consume(recipient, self.clock() - seconds_ago)

    def ready_at(self, account, recipient):
        return max(self._accounts[account].ready_at(account), self._pairs.ready_at(recipient))

    def consume(self, account, recipient, at):
        self._accounts[account].consume(account, at)
        self._pairs.consume(recipient, at)

    def pick(self, items):
        """Choose what to send now.

        :param items: ordered ``(account, recipient, item)`` tuples still to send
        :return: ``(index, None)`` of the first item allowed now (its tokens are consumed),
            or ``(None, wait)``: seconds until one may be.
        """
        now = self.clock()
        earliest = None
        for index, (account, recipient, _item) in enumerate(items):
            ready = self.ready_at(account, recipient)
            if ready <= now:
                self.consume(account, recipient, now)
                return index, None
            earliest = ready if earliest is None else min(earliest, ready)
        return None, (earliest - now) if earliest is not None else 0.0
