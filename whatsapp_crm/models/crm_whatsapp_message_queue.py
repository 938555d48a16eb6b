"""The send service of WhatsApp messages: the queue, its cron, the throttled dispatch and the
answers of the Graph API, including answers that never came.

Never twice: a send whose answer is lost after the request left (read timeout, connection lost
while waiting) may have been accepted by Meta. Such a message is not retried: it waits, in state
``unconfirmed``, for the status webhook that Meta sends for every accepted message. Our payloads
carry the message's id in ``biz_opaque_callback_data``, which Meta repeats in its statuses, so the
status is matched although we never learnt the wamid (see :meth:`_whatsapp_adopt_status`). If no
status comes within ``unconfirmed_wait_seconds``, the message was most likely not accepted; it is
failed with that reason rather than sent blindly again, and the user may resend it from the
chatter. Errors before the request left (connection refused, connect timeout) stay retryable.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from odoo import _, api, fields, models

from ..tools.throttle import Throttle
from ..tools.whatsapp_cloud_api import WhatsAppApiError
from .crm_whatsapp_message import CALLBACK_PREFIX, MEDIA_TYPES, OUTBOUND_DONE_STATES

_logger = logging.getLogger(__name__)

SEND_QUEUE_LOCK = 0x5741_4352_4D53_4E44  # advisory lock of the send cron ("WACRMSND")
MAX_SEND_WORKERS = 10  # the size of the HTTP client's connection pool
OPT_OUT_CODE = 131050  # the customer stopped marketing messages

# Sending settings (ir.config_parameter "whatsapp_crm.<key>") and their defaults.
SEND_DEFAULTS = {
    "send_batch_size": 1000,  # messages taken per cron run
    "send_run_seconds": 60,  # a cron run stops dispatching after this; the rest waits for the next run
    "send_now_seconds": 10.0,  # an interactive send waits at most this for the throttle, then queues
    "send_max_workers": 8,  # concurrent HTTP calls, at most MAX_SEND_WORKERS
    # requests are spaced 10% wider than the account's throughput allows, so that network
    # jitter never puts throughput_limit + 1 requests into one second at Meta's end
    "throughput_margin": 0.1,
    "send_max_retries": 5,
    "retry_base_seconds": 4,  # retry n waits base * 4**n seconds: 4 s, 16 s, 64 s, ~4 min, ~17 min
    # Meta's pair rate is about one message every 6 s per recipient with small bursts allowed:
    # two messages may go together (e.g. a text and its picture), then one every 6 s.
    "pair_rate_spacing": 6.0,
    "pair_rate_burst": 2,
    # how long a send whose answer was lost waits for Meta's status before it is failed
    "unconfirmed_wait_seconds": 600,
}


def _call_send(api, payload):
    """Worker-thread side of a send: plain data in, ``(wamid, error)`` out, no ORM."""
    try:
        return api.send_message(payload), None
    except WhatsAppApiError as error:
        return None, error
    except Exception as error:
        _logger.exception("Unexpected error while sending a WhatsApp message")
        return None, WhatsAppApiError(title=str(error), retryable=False)


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    def _upload_media(self):
        """Upload the attachments of media messages lacking a media id, once per file and account."""
        to_upload = self.filtered(lambda m: m.message_type in MEDIA_TYPES and not m.media_id)
        uploaded = {}  # (account, attachment): (media id, error)
        with to_upload._api_clients() as apis:
            for message in to_upload:
                attachment = message.attachment_ids[:1]
                key = (message.account_id, attachment)
                if key not in uploaded:
                    try:
                        api = apis[message.account_id]
                        media_id = api.upload_media(attachment.raw, attachment.mimetype, attachment.name)
                        uploaded[key] = (media_id, None)
                    except WhatsAppApiError as error:
                        uploaded[key] = (None, error)
                media_id, error = uploaded[key]
                if error and error.request_sent:
                    # an upload whose answer was lost is simply done again: no customer sees it
                    error.request_sent = False
                if error:
                    message._apply_result(error=error)
                else:
                    message.write({"media_id": media_id})
        return self.filtered(lambda m: m.state == "queued" and (m.media_id or m.message_type not in MEDIA_TYPES))

    # ------------------------------------------------------------------
    # The send service
    # ------------------------------------------------------------------

    @contextmanager
    def _api_clients(self):
        """``{account: API client}`` for the accounts of these messages, closed afterwards."""
        apis = {account: account._get_api() for account in self.account_id}
        try:
            yield apis
        finally:
            for api in apis.values():
                api.close()

    def _get_send_setting(self, key):
        default = SEND_DEFAULTS[key]
        value = self.env["ir.config_parameter"].sudo().get_param(f"whatsapp_crm.{key}")
        try:
            return type(default)(value) if value else default
        except ValueError:
            return default

    def _enqueue(self):
        """Queue these outbound messages for the cron; refusals are recorded at once."""
        self.check_access("read")
        queued = self.sudo()._whatsapp_check_policy().with_env(self.env)
        if queued:
            self._trigger_send_cron()
        return queued

    def action_retry(self):
        """Queue failed or refused outbound messages again (a new attempt, checked again)."""
        self.check_access("read")
        retried = self.sudo().filtered(lambda m: m.direction == "outbound" and m.state in ("failed", "refused"))
        retried.write(
            {"state": "queued", "retry_count": 0, "next_try_at": False, "error_code": 0, "error_message": False}
        )
        retried._enqueue()

    def _trigger_send_cron(self, at=None):
        self.env.ref("whatsapp_crm.ir_cron_send_whatsapp_queue").sudo()._trigger(at=at)

    def _prepare_to_send(self, raise_exception=False):
        """Policy, media upload and payload of each message; return those ready to go."""
        ready = self._whatsapp_check_policy(raise_exception=raise_exception)._upload_media()
        for message in ready:
            message.payload = message._prepare_payload()
        return ready

    def _send(self, raise_exception=False):
        """Send these outbound messages now, in this thread: the interactive path.

        They go through the same throttle as the queue (account throughput, customer pair rate,
        seeded with what was sent recently); a message the throttle holds for longer than
        ``send_now_seconds`` stays queued for the cron. Bulk goes through :meth:`_process_queue`.

        :param raise_exception: a policy refusal raises a UserError (nothing is sent)
        :return: the messages handled (see their ``state`` and ``error_message``)
        """
        self.check_access("read")
        ready = self.sudo()._prepare_to_send(raise_exception=raise_exception)
        ready._dispatch(run_seconds=self._get_send_setting("send_now_seconds"))
        if ready.filtered(lambda m: m.state == "queued" and not m.next_try_at):
            self._trigger_send_cron()
        return self

    def _apply_result(self, wamid=None, error=None):
        """Record the API's answer: sent, retry later with backoff, failed for good, or (answer
        lost after the request left) wait for Meta's status."""
        now = fields.Datetime.now()
        if not error:
            self.write(
                {
                    "state": "sent",
                    "wamid": wamid,
                    "timestamp": now,
                    "error_code": 0,
                    "error_message": False,
                    "next_try_at": False,
                }
            )
            self.conversation_id._register_outbound(now)
            return
        self._handle_api_error(error)
        text = error.get_message(self.env.lang)
        if error.request_sent:
            wait_until = now + timedelta(seconds=self._get_send_setting("unconfirmed_wait_seconds"))
            self.write(
                {
                    "state": "unconfirmed",
                    "error_code": 0,
                    "error_message": _(
                        "%(error)s WhatsApp may have accepted the message: it is not sent again, its status "
                        "is awaited until %(until)s UTC.",
                        error=text,
                        until=fields.Datetime.to_string(wait_until),
                    ),
                    "next_try_at": wait_until,
                }
            )
            self._trigger_send_cron(at=wait_until)
            return
        values = {"error_code": error.code or 0}
        max_retries = self._get_send_setting("send_max_retries")
        if error.retryable and self.retry_count < max_retries:
            delay = self._get_send_setting("retry_base_seconds") * 4**self.retry_count
            values.update(
                retry_count=self.retry_count + 1,
                next_try_at=now + timedelta(seconds=delay),
                error_message=_(
                    "%(error)s Attempt %(attempt)s of %(attempts)s failed; the next one is at %(at)s UTC.",
                    error=text,
                    attempt=self.retry_count + 1,
                    attempts=max_retries + 1,
                    at=fields.Datetime.to_string(now + timedelta(seconds=delay)),
                ),
            )
            self.write(values)
            self._trigger_send_cron(at=values["next_try_at"])
            return
        if error.retryable:
            text = _("%(error)s Gave up after %(attempts)s attempts.", error=text, attempts=self.retry_count + 1)
        self.write({**values, "error_message": text, "state": "failed", "next_try_at": False})

    def _handle_api_error(self, error):
        """What an error says beyond these messages: an invalid token, a customer's opt-out."""
        self.account_id._handle_api_error(error)
        if error.code == OPT_OUT_CODE:
            self._whatsapp_record_opt_out(error)

    def _failed_status_values(self, errors):
        """WhatsApp reported, after accepting it, that the message failed: explain it as a send error."""
        if not errors:
            return {"error_code": 0, "error_message": _("WhatsApp reported the message as failed, without a reason.")}
        error = WhatsAppApiError.from_error(errors[0], None)
        self._handle_api_error(error)
        return {"error_code": error.code or 0, "error_message": error.get_message(self.env.lang)}

    @api.model
    def _whatsapp_adopt_status(self, account, status):
        """The message of a status whose wamid we do not know, when the status names one of our
        messages in ``biz_opaque_callback_data``: the send's answer was lost (see the module's
        docstring). The message takes the wamid, and is back awaiting its status; return it."""
        callback = status.get("biz_opaque_callback_data")
        wamid = status.get("id")
        if not isinstance(callback, str) or not callback.startswith(CALLBACK_PREFIX) or not isinstance(wamid, str):
            return self.browse()
        message_id = callback[len(CALLBACK_PREFIX) :]
        if not message_id.isdigit():
            return self.browse()
        message = self.search(
            [
                ("id", "=", int(message_id)),
                ("account_id", "=", account.id),
                ("direction", "=", "outbound"),
                ("wamid", "=", False),
                ("state", "in", ("unconfirmed", "failed", "queued")),
            ]
        )
        if message:
            message.write(
                {"wamid": wamid, "state": "unconfirmed", "next_try_at": False, "error_code": 0, "error_message": False}
            )
            message.conversation_id._register_outbound(message.timestamp or fields.Datetime.now())
        return message

    def _expire_unconfirmed(self):
        """Fail the messages whose lost answer was never followed by a status."""
        self.write(
            {
                "state": "failed",
                "next_try_at": False,
                "error_message": _(
                    "WhatsApp neither answered the send nor reported a status for this message: it was most "
                    "likely not sent. It is not sent again by itself; resend it if needed."
                ),
            }
        )

    @api.model
    def _process_queue(self):
        """Cron: send due queued outbound messages in batches, throttled.

        One run at a time per database: a run commits as it goes, so row locks would not
        last; a session-level advisory lock does (and dies with the connection).
        """
        if not self.env.su:
            return self.sudo()._process_queue()  # the system sends, whoever starts the run
        cr = self.env.cr
        cr.execute("SELECT pg_try_advisory_lock(%s)", [SEND_QUEUE_LOCK])
        if not cr.fetchone()[0]:
            _logger.info("WhatsApp messages are being sent by another run; this one stops.")
            return
        try:
            self._process_queue_locked()
        except Exception:
            cr.rollback()  # the run fails anyway; the lock is released on a usable transaction
            raise
        finally:
            cr.execute("SELECT pg_advisory_unlock(%s)", [SEND_QUEUE_LOCK])

    @api.model
    def _process_queue_locked(self):
        batch_size = self._get_send_setting("send_batch_size")
        due = [
            ("direction", "=", "outbound"),
            ("state", "=", "queued"),
            "|",
            ("next_try_at", "=", False),
            ("next_try_at", "<=", fields.Datetime.now()),
        ]
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        self.search(
            [
                ("direction", "=", "outbound"),
                ("state", "=", "unconfirmed"),
                ("next_try_at", "<=", fields.Datetime.now()),
            ]
        )._expire_unconfirmed()
        messages = self.search(due, order="id", limit=batch_size)
        ready = messages._prepare_to_send()
        if auto_commit:
            # refusals and payloads are kept even if sending breaks
            self.env.cr.commit()  # pylint: disable=invalid-commit
        ready._dispatch(auto_commit=auto_commit)
        if self.search_count(due, limit=1):
            self._trigger_send_cron()

    def _whatsapp_clock(self):
        """(monotonic clock, sleep) of the dispatcher; tests may replace them with a fake clock.

        The system clock is read directly: waiting for real time must not depend on a frozen
        ``time.monotonic`` (freezegun in tests).
        """
        if hasattr(time, "clock_gettime"):
            return partial(time.clock_gettime, time.CLOCK_MONOTONIC), time.sleep
        return time.monotonic, time.sleep

    def _whatsapp_executor(self, max_workers):
        return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="whatsapp_crm_send")

    def _dispatch(self, auto_commit=False, run_seconds=None):
        """Send prepared messages within the throughput and pair-rate limits.

        HTTP calls run in a bounded thread pool with plain data; every ORM read and write stays
        in this thread. Messages not dispatched within ``run_seconds`` (default
        ``send_run_seconds``) stay queued.
        """
        if not self:
            return
        clock, sleep = self._whatsapp_clock()
        max_workers = min(max(self._get_send_setting("send_max_workers"), 1), MAX_SEND_WORKERS)
        margin = 1 + max(self._get_send_setting("throughput_margin"), 0.0)
        throttle = Throttle(
            {account: account.throughput_limit / margin for account in self.account_id},
            self._get_send_setting("pair_rate_spacing"),
            self._get_send_setting("pair_rate_burst"),
            clock=clock,
        )
        self._seed_pair_rate(throttle)
        # (account, recipient, what to send): the pair rate applies per account and recipient
        pending = [(m.account_id, (m.account_id.id, m.conversation_id.id), (m.id, m.payload)) for m in self]
        run_seconds = run_seconds if run_seconds is not None else self._get_send_setting("send_run_seconds")
        deadline, slept = clock() + run_seconds, 0.0  # slept: also ends the run if the clock is frozen
        running = {}  # future -> message id
        slots = threading.BoundedSemaphore(max_workers)

        def collect(block=False):
            done = [f for f in running if block or f.done()]
            for future in done:
                self.browse(running.pop(future))._apply_result(*future.result())
            if any(account.token_invalid for account in self.account_id):
                # WhatsApp refused the token: the account's other messages stay queued
                # (the next run refuses them with the reason) instead of failing one by one
                pending[:] = [item for item in pending if not item[0].token_invalid]
            if auto_commit and done:
                # a message WhatsApp accepted is recorded at once: if this run is killed,
                # the next one must not send it again
                self.env.cr.commit()  # pylint: disable=invalid-commit

        with self._api_clients() as apis, self._whatsapp_executor(max_workers) as pool:
            while pending and clock() < deadline and slept < run_seconds:
                slots.acquire()  # a free worker first, so the request starts when it is allowed
                index, wait = throttle.pick(pending)
                if index is None:
                    slots.release()
                    collect()
                    pause = min(wait, max(deadline - clock(), 0))
                    sleep(pause)
                    slept += pause
                    continue
                account, _recipient, (message_id, payload) = pending.pop(index)
                future = pool.submit(_call_send, apis[account], payload)
                future.add_done_callback(lambda _f: slots.release())
                running[future] = message_id
                collect()
            collect(block=True)
        if auto_commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _seed_pair_rate(self, throttle):
        """Feed the throttle with what was sent recently to the same recipients."""
        spacing = self._get_send_setting("pair_rate_spacing")
        horizon = fields.Datetime.now() - timedelta(seconds=spacing * self._get_send_setting("pair_rate_burst") + 1)
        recent = self.search(
            [
                ("conversation_id", "in", self.conversation_id.ids),
                ("direction", "=", "outbound"),
                ("state", "in", OUTBOUND_DONE_STATES),
                ("timestamp", ">=", horizon),
            ],
            order="timestamp, id",
        )
        now = fields.Datetime.now()
        for message in recent:
            # timestamps are stored to the second: count a message as up to a second younger
            age = max((now - message.timestamp).total_seconds() - 1, 0)
            throttle.seed((message.account_id.id, message.conversation_id.id), age)
