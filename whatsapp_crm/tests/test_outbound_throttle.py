import collections
from concurrent.futures import Executor, Future
from unittest.mock import patch

from odoo import fields
from odoo.tests import BaseCase, tagged, users

from ..tools.throttle import RateLimiter, Throttle
from .common import WhatsappEmulatorMixin
from .test_outbound_send import NOW, OutboundCase


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class SyncExecutor(Executor):
    """Runs each call at once, so the fake clock reads the dispatch time."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


def max_in_window(times, window):
    """The most events within any half-open interval of ``window`` seconds."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestThrottle(BaseCase):
    """The pure-Python limiter."""

    def test_rate_limiter_spacing(self):
        limiter = RateLimiter(6.0, burst=1)
        limiter.consume("a", 0.0)
        self.assertEqual(limiter.ready_at("a"), 6.0)
        self.assertEqual(limiter.ready_at("b"), float("-inf"))
        limiter.consume("a", 10.0)  # idle time is not banked beyond the burst
        self.assertEqual(limiter.ready_at("a"), 16.0)

    def test_rate_limiter_burst(self):
        limiter = RateLimiter(6.0, burst=3)
        for _ in range(3):
            self.assertLessEqual(limiter.ready_at("a"), 0.0)
            limiter.consume("a", 0.0)
        self.assertEqual(limiter.ready_at("a"), 6.0)

    def test_pick_skips_waiting_recipients(self):
        clock = FakeClock()
        throttle = Throttle({"acc": 10}, pair_spacing=6.0, pair_burst=1, clock=clock)
        items = [("acc", "alice", 1), ("acc", "alice", 2), ("acc", "bob", 3)]
        self.assertEqual(throttle.pick(items), (0, None))
        items.pop(0)
        clock.sleep(0.1)
        self.assertEqual(throttle.pick(items), (1, None), "bob goes while alice waits")
        items.pop(1)
        clock.sleep(0.1)
        index, wait = throttle.pick(items)
        self.assertIsNone(index)
        self.assertAlmostEqual(wait, 5.8)

    def test_seed_from_history(self):
        clock = FakeClock()
        clock.now = 100.0
        throttle = Throttle({"acc": 10}, pair_spacing=6.0, pair_burst=1, clock=clock)
        throttle.seed("alice", 2.0)  # sent 2 s ago by an earlier run
        self.assertEqual(throttle.ready_at("acc", "alice"), 104.0)


class BulkCase(OutboundCase):
    """50 customers with an open window, 4 queued messages each."""

    RECIPIENTS = 50
    PER_RECIPIENT = 4

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.throughput_limit = 20
        cls.numbers = [f"3247020{index:04d}" for index in range(cls.RECIPIENTS)]
        conversations = cls.env["crm.whatsapp.conversation"].create(
            [
                {
                    "account_id": cls.account.id,
                    "wa_id": number,
                    "last_inbound_at": NOW.replace(hour=9),
                    "user_id": cls.user_salesman.id,
                }
                for number in cls.numbers
            ]
        )
        cls.bulk = cls.env["crm.whatsapp.message"].create(
            [
                {
                    "account_id": cls.account.id,
                    "conversation_id": conversation.id,
                    "direction": "outbound",
                    "author_id": cls.user_salesman.id,
                    "message_type": "text",
                    "body": f"Message {rank}",
                }
                for rank in range(cls.PER_RECIPIENT)
                for conversation in conversations
            ]
        )

    def set_pair_rate(self, spacing, burst):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("whatsapp_crm.pair_rate_spacing", str(spacing))
        params.set_param("whatsapp_crm.pair_rate_burst", str(burst))

    def assertThrottled(self, sends, throughput, spacing, burst):
        """``sends``: (time, recipient) of every request that reached the API."""
        self.assertLessEqual(max_in_window([t for t, _to in sends], 1.0), throughput)
        by_recipient = collections.defaultdict(list)
        for t, to in sends:
            by_recipient[to].append(t)
        self.assertEqual(len(by_recipient), self.RECIPIENTS)
        for to, times in by_recipient.items():
            times.sort()
            # GCRA: in any interval, at most `burst` messages plus one per elapsed `spacing`
            for i, first in enumerate(times):
                for j in range(i + 1, len(times)):
                    allowed = burst + (times[j] - first) / spacing
                    self.assertLessEqual(j - i + 1, allowed + 1e-6, f"pair rate exceeded for {to}: {times}")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundQueueMock(BulkCase):
    """The queue against the mocked client with a fake clock: Meta's default pair rate."""

    @users("wa_salesman")
    def test_bulk_queue_throttled(self):
        self.set_pair_rate(6.0, 2)
        clock = FakeClock()
        sends = []
        Message = self.registry["crm.whatsapp.message"]
        answer = {"messaging_product": "whatsapp", "messages": [{"id": None}]}

        def record(payload):
            sends.append((clock(), payload["to"]))
            return {**answer, "messages": [{"id": f"wamid.BULK{len(sends)}"}]}

        self.bulk.with_env(self.env)._enqueue()
        with (
            patch.object(Message, "_whatsapp_clock", lambda self: (clock, clock.sleep)),
            patch.object(Message, "_whatsapp_executor", lambda self, workers: SyncExecutor()),
            self.mock_whatsapp_api(responses={("POST", "/messages"): record}),
        ):
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(sends), 200)
        self.assertEqual(set(self.bulk.mapped("state")), {"sent"})
        self.assertThrottled(sends, throughput=20, spacing=6.0, burst=2)
        # the limits are reached, not just respected: ~10 s for 200 messages at 20/s (+10% margin),
        # and the 4th message of a recipient waits 2 x 6 s after its burst of two
        self.assertGreaterEqual(clock(), 12.0)
        self.assertLess(clock(), 20.0)
        self.assertEqual(max_in_window([t for t, _to in sends], 1.0), 19)

    @users("wa_salesman")
    def test_run_time_limit_leaves_rest_queued(self):
        self.set_pair_rate(6.0, 1)
        self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.send_run_seconds", "5")
        clock = FakeClock()
        sends = []

        def record(payload):
            sends.append(clock())
            return {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.RUN{len(sends)}"}]}

        Message = self.registry["crm.whatsapp.message"]
        self.bulk.with_env(self.env)._enqueue()
        triggers = self.env["ir.cron.trigger"].sudo().search_count([])
        with (
            patch.object(Message, "_whatsapp_clock", lambda self: (clock, clock.sleep)),
            patch.object(Message, "_whatsapp_executor", lambda self, workers: SyncExecutor()),
            self.mock_whatsapp_api(responses={("POST", "/messages"): record}),
        ):
            self.env["crm.whatsapp.message"]._process_queue()
            self.assertEqual(len(sends), 50, "one message per recipient in 5 s at one per 6 s")
            self.assertEqual(self.bulk.mapped("state").count("queued"), 150)
            triggered = self.env["ir.cron.trigger"].sudo().search_count([])
            self.assertGreater(triggered, triggers, "the cron comes back at once")
            # the next run knows what the previous one sent (same frozen second): it waits 6 s
            self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.send_run_seconds", "10")
            second_run_start = clock()
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(sends), 100)
        self.assertGreaterEqual(min(sends[50:]) - second_run_start, 6.0)

    @users("wa_salesman")
    def test_results_committed_as_they_come(self):
        """A run killed mid-batch does not send again what WhatsApp already accepted: each
        answer is committed before the next requests' answers are awaited."""
        clock = FakeClock()
        Message = self.registry["crm.whatsapp.message"]
        messages = self.bulk[:3]  # three recipients: no pair-rate wait
        ready = messages._prepare_to_send()
        sent_at_commits = []

        def commit():
            sent_at_commits.append(messages.filtered(lambda m: m.state == "sent").ids)

        with (
            patch.object(Message, "_whatsapp_clock", lambda self: (clock, clock.sleep)),
            patch.object(Message, "_whatsapp_executor", lambda self, workers: SyncExecutor()),
            patch.object(self.env.cr, "commit", side_effect=commit),
            self.mock_whatsapp_api(),
        ):
            ready._dispatch(auto_commit=True)
        self.assertEqual(set(messages.mapped("state")), {"sent"})
        self.assertEqual(sent_at_commits[:3], [messages[:1].ids, messages[:2].ids, messages.ids])

    @users("wa_salesman")
    def test_invalid_token_stops_the_account(self):
        """Once WhatsApp refuses the token, the rest of the batch is not sent with it."""
        clock = FakeClock()
        Message = self.registry["crm.whatsapp.message"]
        self.bulk.with_env(self.env)._enqueue()
        with (
            patch.object(Message, "_whatsapp_clock", lambda self: (clock, clock.sleep)),
            patch.object(Message, "_whatsapp_executor", lambda self, workers: SyncExecutor()),
            self.mock_whatsapp_api(sim_error=self.api_error(190, http_status=401)),
        ):
            self.env["crm.whatsapp.message"]._process_queue()
            self.assertEqual(len(self._wa_requests), 1)
            self.assertTrue(self.account.token_invalid)
            self.assertEqual(self.bulk.mapped("state").count("failed"), 1)
            self.assertEqual(self.bulk.mapped("state").count("queued"), 199)
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self._wa_requests), 1)
        self.assertEqual(self.bulk.mapped("state").count("refused"), 199)
        self.assertIn("access token", self.bulk.filtered(lambda m: m.state == "refused")[:1].error_message)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundQueueEmulator(WhatsappEmulatorMixin, BulkCase):
    """The queue over real HTTP against the emulator, which caps throughput at 20/s."""

    freeze = False  # the emulator's throughput cap needs the real clock

    @users("wa_salesman")
    def test_bulk_queue_emulator(self):
        spacing, burst = 1.0, 2  # short spacing keeps the test short; the rule is the same
        self.set_pair_rate(spacing, burst)
        emulator = self.start_emulator(throughput=20)
        self.bulk.conversation_id.last_inbound_at = fields.Datetime.now()
        for number in self.numbers:
            emulator.open_window(number)
        self.bulk.with_env(self.env)._enqueue()
        self.env["crm.whatsapp.message"]._process_queue()
        statuses = collections.Counter(r["status"] for r in emulator.requests)
        self.assertEqual(statuses, {200: 200}, "no 130429 nor any other error")
        self.assertEqual(set(self.bulk.mapped("state")), {"sent"})
        self.assertEqual(
            sorted(self.bulk.mapped("wamid")), sorted(emulator.sent_messages), "every wamid comes from the API"
        )
        sends = [(r["received_at"], r["json"]["to"]) for r in emulator.requests]
        # the pair rate is checked with 50 ms of tolerance for network jitter
        self.assertThrottled(sends, throughput=20, spacing=spacing * 0.95, burst=burst)
