"""Durable log of WhatsApp webhook deliveries: store, route, retry, lock.

The pipeline: the controller stores a verified delivery and commits (:meth:`_store`), wakes the
delivery's processing lane (:meth:`_wake`) and answers. Each lane is a cron
(``ir_cron_whatsapp_webhook_lane_<n>``) that takes its pending events in batches
(:meth:`_cron_process`), routes each change to the model owning its field (in
crm_whatsapp_webhook_event_route.py), applies the batch, then calls the inbound hook once
per batch. A batch is first applied in one savepoint; if anything fails, it is applied again
with every item (message, status...) and the hook in a savepoint of its own.

Why lanes: an event's lane comes from its customer (:func:`~..tools.webhook_payload.lane_key`).
A delivery naming customers of several lanes (Meta may batch several customers' statuses) is
stored once per lane, each copy applying only its lane's customers (``split``), so that one
customer's events are always in one lane, applied one after the other in the order they
were stored, while other customers' lanes run in parallel. Odoo runs one cron at a time
across all cron workers and servers (it locks the ``ir_cron`` row), so a lane never runs twice
at once, and more cron workers (up to ``LANES``) process more lanes at once. A session-level
advisory lock per lane adds the same guarantee for runs started by hand.
"""

import logging
import threading
import time
import zlib
from datetime import timedelta

import psycopg2.errors

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..tools import webhook_payload as wp

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # processing: retried after 1, 2, 4 ... 64 minutes, then only by hand
STATUS_WAIT_ATTEMPTS = 3  # a status may come before the send's response stored its wamid
LANES = 4  # processing lanes: the crons ir_cron_whatsapp_webhook_lane_0 .. _3 (data/ir_cron_data.xml)
LANE_LOCK = 0x5741_4352_4D57_4800  # + lane: advisory lock of a lane's run ("WACRMWH")
BATCH_SIZE = 20  # events per transaction: a new customer's message takes about 80 ms
# A lane run stops taking batches after this and triggers itself again. A prefork cron worker
# must run every job ready at its wake-up within limit_time_real (120 s by default), counted from
# before its sleep of up to 70 s: the four lanes take about 4 x (5 + 2) s of what is left.
RUN_SECONDS = 5
# Another transaction changed the same rows: the batch is rolled back and taken again.
CONCURRENCY_ERRORS = (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected)


NOW_SQL = SQL("(now() AT TIME ZONE 'UTC')")


def _backoff(attempts):
    return timedelta(minutes=2 ** max(attempts - 1, 0))


def _auto_commit():
    return not getattr(threading.current_thread(), "testing", False)


def lane_of_key(key):
    """The processing lane of a customer (or account) key."""
    return zlib.crc32(key.encode()) % LANES


def lane_of(payload):
    """The processing lane of a parsed payload (see the module's docstring): that of its first
    customer, which also applies what names no customer (template or account updates)."""
    return lane_of_key(wp.lane_key(payload))


def lanes_of(payload):
    """Every lane a payload's customers are in, its own lane first."""
    first = lane_of(payload)
    return [first, *sorted({lane_of_key(key) for key in wp.customer_keys(payload)} - {first})]


class CrmWhatsappWebhookEvent(models.Model):
    _name = "crm.whatsapp.webhook.event"
    _description = "WhatsApp Webhook Event"
    _order = "id desc"

    account_id = fields.Many2one("crm.whatsapp.account", index=True, ondelete="cascade")
    payload = fields.Text(required=True, help="The raw body as WhatsApp sent it.")
    # unique: the constraint's index serves the lookups, no second index
    payload_hash = fields.Char(readonly=True, help="SHA-256 of the raw body: spots Meta's re-deliveries.")
    fields_summary = fields.Char("Fields", readonly=True, help="The webhook fields of the payload.")
    received_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    lane = fields.Integer(readonly=True, default=0, help="The processing cron of this event, chosen by its customer.")
    split = fields.Boolean(
        readonly=True, help="The delivery names customers of several lanes: this event applies its lane's customers."
    )
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("failed", "Failed"), ("ignored", "Ignored")],
        default="pending",
        required=True,
        index=True,
    )
    error = fields.Text(readonly=True, help="Why processing failed, or notes about what was not applied.")
    attempts = fields.Integer(readonly=True, default=0)
    next_attempt_at = fields.Datetime(readonly=True)
    processed_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("payload_hash_unique", "unique(payload_hash)", "A webhook delivery is stored once."),
    ]

    def init(self):
        # the backlog of each lane, in order: what _claim() reads
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_whatsapp_webhook_event_backlog_index
               ON crm_whatsapp_webhook_event (lane, id) WHERE state IN ('pending', 'failed')"""
        )
        # redundant with the unique constraint's index (and with the backlog index)
        self.env.cr.execute("DROP INDEX IF EXISTS crm_whatsapp_webhook_event__payload_hash_index")
        self.env.cr.execute("DROP INDEX IF EXISTS crm_whatsapp_webhook_event__next_attempt_at_index")

    # ------------------------------------------------------------
    # Storing (the controller's path: keep it to a few queries)
    # ------------------------------------------------------------

    @api.model
    def _store(self, raw, payload, account):
        """Store a verified delivery in one query; return the event (one per lane when its customers
        are in several, see the module's docstring), or an empty recordset for a re-delivery (the
        same body stored already, even by a concurrent request).

        A delivery for an archived account is stored as ignored, with a note: Process again
        applies it once the account is active again.

        Call it before any other write of the transaction: when a concurrent request stored the
        same body after this transaction's snapshot, PostgreSQL refuses the insert (repeatable
        read) and the transaction is rolled back, as for any re-delivery.
        """
        digest = wp.payload_hash(raw)
        names = sorted({str(field) for _waba, field, _value in wp.iter_changes(payload) if field})
        state, note = "pending", None
        if not account.active:
            state = "ignored"
            note = _(
                "The WhatsApp account %s is archived: nothing applied. Process again once it is active.",
                account.name,
            )
        try:
            return self._insert(raw, payload, account, digest, names, state, note)
        except psycopg2.errors.SerializationFailure:
            self.env.cr.rollback()  # the same delivery, stored meanwhile by a concurrent request
            return self.browse()

    @api.model
    def _insert(self, raw, payload, account, digest, names, state, note):
        lanes = lanes_of(payload)
        now, uid = NOW_SQL, self.env.uid  # (cr.now() would cost the request a query)
        rows = [
            SQL(
                "(%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s)",
                account.id,
                raw.decode(),
                digest if index == 0 else f"{digest}:{lane}",  # a re-delivery conflicts on each
                ", ".join(names)[:1000],
                lane,
                len(lanes) > 1,
                state,
                note,
                now,
                uid,
                now,
                uid,
                now,
            )
            for index, lane in enumerate(lanes)
        ]
        self.env.cr.execute(
            SQL(
                """INSERT INTO crm_whatsapp_webhook_event
                       (account_id, payload, payload_hash, fields_summary, lane, split, state, error, attempts,
                        received_at, create_uid, create_date, write_uid, write_date)
                   VALUES %s
                   ON CONFLICT (payload_hash) DO NOTHING
                   RETURNING id""",
                SQL(", ").join(rows),
            ),
            log_exceptions=False,
        )
        return self.browse(sorted(row[0] for row in self.env.cr.fetchall()))

    @api.model
    def _wake(self, lane):
        """Make sure a run of ``lane`` starts after the events just committed, with one query.

        Call it after the commit of the events, in a new transaction: its snapshot must see
        the runs that started before that commit. Coalesced: a burst writes one trigger per lane
        run, not one per request. A trigger is needed unless one exists that was written after
        the start of the lane's last run (Odoo deletes, at the end of a run, only the triggers
        older than the run's start; a younger one makes it run again). The last run's start is
        its progress record, which Odoo commits before calling the cron.
        """
        # the xmlid's id is cached, unlike env.ref(), which reads the record in every request
        cron_id = self.env["ir.model.data"]._xmlid_to_res_id(
            f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{lane}", raise_if_not_found=False
        )
        if not cron_id:
            return False
        cron = self.env["ir.cron"].browse(cron_id)
        self.env.cr.execute(
            SQL(
                """INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, create_date, write_uid, write_date)
                   SELECT %(cron)s, clock_timestamp() AT TIME ZONE 'UTC', %(uid)s, %(now)s, %(uid)s, %(now)s
                    WHERE NOT EXISTS (
                          SELECT 1 FROM ir_cron_trigger
                           WHERE cron_id = %(cron)s
                             AND call_at >= COALESCE(
                                 (SELECT create_date FROM ir_cron_progress WHERE cron_id = %(cron)s
                                   ORDER BY id DESC LIMIT 1), '-infinity'))
                   RETURNING id""",
                cron=cron.id,
                uid=self.env.uid,
                now=NOW_SQL,
            )
        )
        woken = bool(self.env.cr.fetchone())
        if woken:
            # the cron workers sleep until notified (or for a minute)
            self.env.cr.postcommit.add(cron._notifydb)
        return woken

    @api.autovacuum
    def _gc_processed_events(self):
        """Forget processed deliveries after the retention period (days, 0 keeps them)."""
        days = int(self.env["ir.config_parameter"].sudo().get_param("whatsapp_crm.webhook_event_retention_days", 60))
        if days > 0:
            limit_date = fields.Datetime.now() - timedelta(days=days)
            self.search([("state", "in", ("done", "ignored")), ("received_at", "<", limit_date)]).unlink()

    # ------------------------------------------------------------
    # Processing
    # ------------------------------------------------------------

    def action_process_again(self):
        """Queue the events again for their lane (the account may have been re-activated)."""
        # only those who may edit the log (managers) re-process it; processing itself writes
        # contacts, leads and account notes on WhatsApp's behalf
        self.check_access("write")
        events = self.sudo()
        events.write({"state": "pending", "attempts": 0, "next_attempt_at": False, "processed_at": False})
        for lane in set(events.mapped("lane")):
            self._wake(lane)

    @api.model
    def _cron_process(self, lane=None):
        """Process the backlog of ``lane`` (all lanes when None: tests, shell) in batches, each
        batch in its own transaction, until it is caught up (a batch smaller than BATCH_SIZE) or
        the run has lasted RUN_SECONDS.

        An event being processed stays locked (``FOR UPDATE``) until its batch commits: if the
        worker dies, PostgreSQL releases the lock with the connection and the next run of the
        lane, within a minute (the lane crons run every minute), takes it again. Meanwhile
        ``SKIP LOCKED`` keeps any other run from taking it.
        """
        auto_commit = _auto_commit()
        cr = self.env.cr
        if lane is not None:
            cr.execute("SELECT pg_try_advisory_lock(%s)", [LANE_LOCK + lane])
            if not cr.fetchone()[0]:
                _logger.info("WhatsApp webhook lane %s is processed by another run", lane)
                return
        deadline, seen = time.monotonic() + RUN_SECONDS, []
        try:
            while time.monotonic() < deadline:
                if auto_commit:
                    cr.commit()  # pylint: disable=invalid-commit
                events = self.browse()
                try:
                    events = self._claim(lane, BATCH_SIZE, seen)
                    if not events:
                        break
                    seen += events.ids
                    events._process()
                    if auto_commit:
                        cr.commit()  # pylint: disable=invalid-commit
                    if len(events) < BATCH_SIZE:
                        # caught up: the other lanes' turn. What arrived since woke this lane
                        # again (see _wake), for a run after theirs.
                        break
                except CONCURRENCY_ERRORS as error:
                    if not auto_commit:
                        raise
                    cr.rollback()
                    seen = seen[: len(seen) - len(events)]
                    _logger.info("WhatsApp webhook batch taken again after a concurrent update: %s", error.pgcode)
                    continue
            else:
                # stopped by the deadline: run again soon. A trigger, not Odoo's progress API, which
                # would run the lane up to ten times in a row in the same worker.
                if lane is not None:
                    self._wake(lane)
                    if auto_commit:
                        cr.commit()  # pylint: disable=invalid-commit
        except Exception:
            if auto_commit:
                cr.rollback()  # the run fails anyway; the lock is released on a usable transaction
            raise
        finally:
            if lane is not None:
                cr.execute("SELECT pg_advisory_unlock(%s)", [LANE_LOCK + lane])

    @api.model
    def _claim(self, lane, limit, exclude=()):
        """Lock and return the next due events of ``lane``, oldest first, skipping those another
        run holds. In a run, this is the first statement of its transaction: the transaction's
        snapshot (Odoo's REPEATABLE READ, kept for everything) is taken now, so it sees the
        latest committed version of every event and of everything the previous batches of this
        customer's lane wrote; the lock itself needs no other isolation level."""
        self.flush_model()  # (nothing to flush in a run; tests and buttons may have written)
        self.env.cr.execute(
            SQL(
                """SELECT id FROM crm_whatsapp_webhook_event
                    WHERE state IN ('pending', 'failed') AND attempts < %(max)s
                      AND (next_attempt_at IS NULL OR next_attempt_at <= (now() AT TIME ZONE 'UTC'))
                      AND %(lane)s AND id != ALL(%(exclude)s)
                    ORDER BY lane, id
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED""",
                max=MAX_ATTEMPTS,
                lane=SQL("TRUE") if lane is None else SQL("lane = %s", lane),
                exclude=list(exclude),
                limit=limit,
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    def _process(self):
        """Apply these events in order, then call the inbound hook once with the messages of all
        of them.

        First all at once, in one savepoint: a batch of sound deliveries costs one flush and one
        live push. If anything in it fails, the batch is rolled back to that savepoint and
        applied again item by item, which is what decides, logs and notes what failed: the fast
        attempt logs nothing.
        """
        # what a delivery creates or assigns (contacts, conversations, leads) is told to the
        # salespeople inside Odoo (live push, inbox), not by "you have been assigned" e-mails
        events = self.with_context(mail_auto_subscribe_no_notify=True)
        try:
            with self.env.cr.savepoint():
                events._apply_batch(isolated=False)
            return
        except CONCURRENCY_ERRORS:
            raise
        except Exception:  # the isolated pass decides, notes and logs what failed
            _logger.debug("WhatsApp webhook batch %s applied again item by item", self.ids)
        events._apply_batch(isolated=True)

    def _apply_batch(self, isolated):
        """Apply these events in order, then run the inbound hook on the messages they stored.

        :param isolated: each item, and then the hook, in its own savepoint: one bad item or a
            failing hook undoes only its own work. An event that hits a bug is marked failed and
            retried with backoff; its traceback is logged at the first attempt only. Expected
            data problems are noted on the event. Otherwise the first failure raises.
        """
        events = self.with_context(**self.env["crm.whatsapp.conversation"]._whatsapp_inbound_batch())
        received = events.env["crm.whatsapp.message"]
        for event in events:
            try:
                # no savepoint for the event: each of its items has one, and the rest only reads
                # (an event waiting for its statuses' messages was otherwise applied already)
                notes, outcome, stored, bugs = event._apply(
                    wp.loads(event.payload), statuses_only=bool(event.processed_at), isolated=isolated
                )
            except CONCURRENCY_ERRORS:
                raise
            except Exception as error:
                if not isolated:
                    raise
                notes, outcome, stored, bugs = [], "failed", received.browse(), [error]
                event._log_bug(error)
            received |= stored
            event._record_outcome(notes, outcome, bugs)
        if isolated:
            events._call_inbound_hook(received)
        elif received:
            events.env["crm.whatsapp.conversation"]._whatsapp_on_inbound(received)

    def _record_outcome(self, notes, outcome, bugs):
        """Write what applying the event gave: done, ignored, waiting for its statuses' messages,
        or failed (retried with backoff)."""
        values = {"error": "\n".join(notes + [f"{type(b).__name__}: {b}" for b in bugs]) or False}
        now = fields.Datetime.now()
        if bugs:
            attempts = self.attempts + 1
            values.update(
                state="failed",
                attempts=attempts,
                next_attempt_at=now + _backoff(attempts) if attempts < MAX_ATTEMPTS else False,
            )  # not processed_at: a retry applies it all again (what was stored is not stored twice)
        elif outcome == "wait" and self.attempts < STATUS_WAIT_ATTEMPTS:
            values.update(
                state="pending",
                attempts=self.attempts + 1,
                next_attempt_at=now + _backoff(self.attempts + 1),
                processed_at=now,
            )
        else:
            values.update(state="ignored" if outcome != "done" else "done", next_attempt_at=False, processed_at=now)
        self.write(values)
        self._schedule_retry()

    def _log_bug(self, error):
        """A traceback for a bug, once: later attempts of the same event log one line."""
        if self.attempts:
            _logger.warning("WhatsApp webhook event %s failed again: %s", self.id, wp.loggable(error, 200))
        else:
            _logger.error("WhatsApp webhook event %s failed", self.id, exc_info=error)

    def _call_inbound_hook(self, messages):
        """Run the inbound hook on the messages of a batch; its failure (a bug) undoes only its work."""
        if not messages:
            return
        try:
            with self.env.cr.savepoint():
                self.env["crm.whatsapp.conversation"]._whatsapp_on_inbound(messages)
        except CONCURRENCY_ERRORS:
            raise
        except Exception:
            _logger.exception("WhatsApp inbound hook failed on messages %s", messages.ids)

    def _schedule_retry(self):
        """Wake the event's lane when its next attempt is due."""
        if self.next_attempt_at:
            cron = self.env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{self.lane}", raise_if_not_found=False)
            if cron:
                cron._trigger(at=self.next_attempt_at)
