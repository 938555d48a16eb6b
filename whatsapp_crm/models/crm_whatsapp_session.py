from datetime import datetime, timedelta

from odoo import api, fields, models

# Sessions idle this long (hours since their last message) are closed by the cron.
DEFAULT_IDLE_HOURS = 12
# Customer messages that neither open a session nor count in it.
NOT_COUNTED_TYPES = ("system", "reaction", "revoke", "edit", "unsupported")
# Only these outbound messages reached WhatsApp.
DONE_STATES = ("sent", "delivered", "read", "played")
SURVEYED_STATES = ("asked", "comment", "done")  # csat_state of a session whose survey was sent
WEEKDAYS = [
    ("0", "Monday"),
    ("1", "Tuesday"),
    ("2", "Wednesday"),
    ("3", "Thursday"),
    ("4", "Friday"),
    ("5", "Saturday"),
    ("6", "Sunday"),
]
HOURS = [(f"{hour:02d}", f"{hour:02d}:00") for hour in range(24)]
SLA_STATUSES = [("none", "No Target"), ("pending", "Waiting"), ("met", "Met"), ("missed", "Missed")]


def _hours(start, end):
    return max((end - start).total_seconds(), 0) / 3600 if start and end else 0.0


class CrmWhatsappSession(models.Model):
    """One customer's request, from their first message until closed or idle: the unit of reporting.

    Its facts are written when they happen (a message in or out, a close, a lead won), so that
    reports read stored columns instead of recomputing a million messages.
    """

    _name = "crm.whatsapp.session"
    _description = "WhatsApp Session"
    _inherit = ["rating.mixin"]
    _order = "first_inbound_at desc, id desc"

    conversation_id = fields.Many2one("crm.whatsapp.conversation", required=True, ondelete="cascade", index=True)
    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    team_id = fields.Many2one("crm.team", "Sales Team", index=True)
    user_id = fields.Many2one("res.users", "Assigned To", index=True)
    partner_id = fields.Many2one("res.partner", "Customer", index=True)
    state = fields.Selection([("open", "Open"), ("closed", "Closed")], default="open", required=True, index=True)
    opened_at = fields.Datetime("Opened", default=fields.Datetime.now, required=True, readonly=True)
    first_inbound_at = fields.Datetime(
        "First Customer Message", required=True, readonly=True, index=True, help="When WhatsApp says it was sent."
    )
    opened_weekday = fields.Selection(
        WEEKDAYS,
        "Day of Week",
        readonly=True,
        help="Of the first customer message, in the time zone of the team's working hours.",
    )
    opened_hour = fields.Selection(
        HOURS,
        "Hour of Day",
        readonly=True,
        help="Of the first customer message, in the time zone of the team's working hours.",
    )
    first_response_at = fields.Datetime("First Reply", readonly=True)
    first_response_user_id = fields.Many2one("res.users", "First Reply By", readonly=True)
    first_response_minutes = fields.Float(
        "First Response (minutes)", readonly=True, aggregator="avg", help="Wall-clock time to the first reply."
    )
    first_response_business_minutes = fields.Float(
        "First Response (business minutes)",
        readonly=True,
        aggregator="avg",
        help="Time to the first reply within the team's working hours.",
    )
    sla_minutes = fields.Integer("Target (business minutes)", readonly=True, aggregator="avg")
    sla_status = fields.Selection(
        SLA_STATUSES,
        "First Response Target",
        default="pending",
        required=True,
        readonly=True,
    )
    waiting_since = fields.Datetime(readonly=True, help="The oldest customer message not answered yet.")
    inbound_count = fields.Integer("Customer Messages", readonly=True)
    outbound_count = fields.Integer("Our Messages", readonly=True)
    automatic_count = fields.Integer(
        "Automatic Messages", readonly=True, help="Bot and automatic replies: counted in our messages, never a reply."
    )
    last_inbound_at = fields.Datetime("Last Customer Message", readonly=True)
    last_message_at = fields.Datetime(readonly=True)
    closed_at = fields.Datetime("Closed", readonly=True)
    close_reason = fields.Selection([("closed", "Closed"), ("idle", "Idle")], readonly=True)
    resolution_hours = fields.Float(
        "Resolution (hours)", readonly=True, aggregator="avg", help="From the first customer message to the close."
    )
    resolution_business_hours = fields.Float("Resolution (business hours)", readonly=True, aggregator="avg")
    lead_id = fields.Many2one("crm.lead", "Lead", index="btree_not_null", ondelete="set null")
    lead_created = fields.Boolean("Produced a Lead", readonly=True, help="The lead was created during this session.")
    lead_outcome = fields.Selection(
        [("open", "Open"), ("won", "Won"), ("lost", "Lost")],
        compute="_compute_lead_outcome",
        store=True,
        compute_sudo=True,
    )
    lead_won_revenue = fields.Monetary(
        "Won Revenue", compute="_compute_lead_outcome", store=True, compute_sudo=True, currency_field="currency_id"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    source_id = fields.Many2one("utm.source", "Source", readonly=True)
    medium_id = fields.Many2one("utm.medium", "Medium", readonly=True)
    campaign_id = fields.Many2one("utm.campaign", "Campaign", readonly=True)
    ad_id = fields.Char("Click-to-WhatsApp Ad ID", readonly=True)
    ctwa_clid = fields.Char("Click-to-WhatsApp Click ID", readonly=True)
    message_ids_wa = fields.One2many("crm.whatsapp.message", "session_id", "WhatsApp Messages")
    csat_state = fields.Selection(
        [
            ("none", "Not Asked"),
            ("skipped", "Not Asked (window closed or opted out)"),
            ("asked", "Asked"),
            ("comment", "Comment Asked"),
            ("done", "Answered"),
        ],
        "Satisfaction Survey",
        default="none",
        required=True,
        readonly=True,
    )
    csat_asked_at = fields.Datetime("Survey Sent", readonly=True)
    csat_message_id = fields.Many2one("crm.whatsapp.message", "Survey Message", readonly=True, ondelete="set null")
    csat_rating = fields.Integer("Satisfaction", readonly=True, aggregator="avg", help="5: good, 3: okay, 1: bad.")
    csat_comment = fields.Text("Customer Comment", readonly=True)

    @api.depends("conversation_id", "first_inbound_at")
    def _compute_display_name(self):
        for session in self:
            when = (
                fields.Datetime.context_timestamp(session, session.first_inbound_at) if session.first_inbound_at else ""
            )
            session.display_name = f"{session.conversation_id.display_name or ''} {when and when:%Y-%m-%d %H:%M}"

    @api.depends("lead_id.stage_id.is_won", "lead_id.active", "lead_id.probability", "lead_id.expected_revenue")
    def _compute_lead_outcome(self):
        for session in self:
            lead = session.lead_id.with_context(active_test=False)
            if not lead:
                session.lead_outcome, session.lead_won_revenue = False, 0.0
            elif lead.stage_id.is_won:
                session.lead_outcome, session.lead_won_revenue = "won", lead.expected_revenue
            elif not lead.active and not lead.probability:
                session.lead_outcome, session.lead_won_revenue = "lost", 0.0
            else:
                session.lead_outcome, session.lead_won_revenue = "open", 0.0

    # ------------------------------------------------------------
    # Business time
    # ------------------------------------------------------------

    def _calendar(self):
        self.ensure_one()
        return self.team_id._whatsapp_calendar(self.company_id)

    def _business_hours(self, start, end):
        """Working hours of the team's calendar between two UTC datetimes (wall-clock if it has none)."""
        self.ensure_one()
        if not start or not end or end <= start:
            return 0.0
        calendar = self._calendar()
        if not calendar:
            return _hours(start, end)
        return calendar.get_work_hours_count(start, end, compute_leaves=True)

    @api.model
    def _local_time_values(self, team, company, when):
        calendar = team._whatsapp_calendar(company)
        local = fields.Datetime.context_timestamp(self.with_context(tz=calendar.tz or "UTC"), when)
        return {"opened_weekday": str(local.weekday()), "opened_hour": f"{local.hour:02d}"}

    # ------------------------------------------------------------
    # Facts, as they happen
    # ------------------------------------------------------------

    @api.model
    def _of_inbound(self, messages):
        """The open and the surveyed sessions of these messages' conversations, in one query:
        what :meth:`_csat_parse_answers` and :meth:`_register_inbound` look at."""
        return self.search(
            [
                ("conversation_id", "in", messages.conversation_id.ids),
                "|",
                ("state", "=", "open"),
                ("csat_state", "in", SURVEYED_STATES),
            ]
        )

    @api.model
    def _register_inbound(self, messages, sessions):
        """Count customer messages in their conversation's open session, opening one if needed.

        Called once per batch of stored inbound messages; a message is counted once.

        :param sessions: the result of :meth:`_of_inbound` for these messages
        """
        messages = messages.filtered(
            lambda m: m.direction == "inbound" and not m.session_id and m.message_type not in NOT_COUNTED_TYPES
        )
        if not messages:
            return self.browse()
        conversations = messages.conversation_id
        open_sessions = {  # the latest open session, were there several (_order, without a query)
            session.conversation_id: session
            for session in sessions.filtered(lambda s: s.state == "open").sorted(
                lambda s: (s.first_inbound_at or datetime.min, s.id)
            )
        }
        touched = self.browse()
        for conversation in conversations:
            batch = messages.filtered(lambda m, c=conversation: m.conversation_id == c).sorted(
                lambda m: (m.timestamp, m.id)
            )
            session = open_sessions.get(conversation) or self._open(conversation, batch[0])
            last = max(batch.mapped("timestamp"))
            values = {
                "inbound_count": session.inbound_count + len(batch),
                "last_inbound_at": max(last, session.last_inbound_at or last),
                "last_message_at": max(last, session.last_message_at or last),
            }
            if not session.waiting_since:
                values["waiting_since"] = batch[0].timestamp
            if conversation.lead_id and not session.lead_id:
                values.update(session._lead_values(conversation.lead_id))
            session.write(values)
            batch.write({"session_id": session.id})
            touched |= session
        return touched

    @api.model
    def _open(self, conversation, message):
        """A new session for ``conversation`` whose first customer message is ``message``."""
        team = conversation.team_id or conversation.account_id.team_id
        values = {
            "conversation_id": conversation.id,
            "account_id": conversation.account_id.id,
            "team_id": team.id,
            "user_id": conversation.user_id.id,
            "partner_id": conversation.partner_id.id,
            "first_inbound_at": message.timestamp,
            "sla_minutes": team.whatsapp_sla_minutes,
            "sla_status": "pending" if team.whatsapp_sla_minutes > 0 else "none",
            **self._local_time_values(team, conversation.account_id.company_id, message.timestamp),
            **self._utm_values(message.referral_data),
        }
        # a fact of reporting: no "created" note, no follower
        Quiet = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True)
        return Quiet.create(values).with_env(self.env)

    @api.model
    def _utm_values(self, referral):
        """Where the customer came from: WhatsApp, and the click-to-WhatsApp ad when there was one."""
        values = {"source_id": self.env.ref("whatsapp_crm.utm_source_whatsapp").id}
        if referral:
            lead_values = self.env["crm.lead"]._whatsapp_referral_values(referral)
            values.update(
                medium_id=lead_values.get("medium_id"),
                campaign_id=lead_values.get("campaign_id"),
                ad_id=lead_values.get("whatsapp_ad_id"),
                ctwa_clid=lead_values.get("whatsapp_ctwa_clid"),
            )
        return values

    def _lead_values(self, lead):
        """Link ``lead``. The first session of a lead created from WhatsApp produced it."""
        self.ensure_one()
        produced = lead.source_id == self.env.ref("whatsapp_crm.utm_source_whatsapp") and not self.search_count(
            [("lead_id", "=", lead.id), ("id", "!=", self.id)], limit=1
        )
        values = {"lead_id": lead.id, "lead_created": produced}
        for field in ("source_id", "medium_id", "campaign_id"):
            if lead[field] and not (field == "source_id" and self[field]):
                values[field] = lead[field].id
        return values

    @api.model
    def _register_outbound(self, messages):
        """Count outbound messages that reached WhatsApp in their conversation's open session.

        The first message that is not automatic (``is_automatic``: bots, auto-replies, surveys) is
        the first response.
        """
        messages = messages.filtered(lambda m: m.direction == "outbound" and not m.session_id and m.conversation_id)
        if not messages:
            return
        sessions = {
            session.conversation_id: session
            for session in self.search(
                [("conversation_id", "in", messages.conversation_id.ids), ("state", "=", "open")]
            )
        }
        for conversation, session in sessions.items():
            batch = messages.filtered(lambda m, c=conversation: m.conversation_id == c).sorted(
                lambda m: (m.timestamp, m.id)
            )
            last = max(batch.mapped("timestamp"))
            automatic = batch.filtered("is_automatic")
            values = {
                "outbound_count": session.outbound_count + len(batch),
                "automatic_count": session.automatic_count + len(automatic),
                "last_message_at": max(last, session.last_message_at or last),
            }
            replies = batch - automatic
            if replies:
                values["waiting_since"] = False
            if replies and not session.first_response_at:
                values.update(session._first_response_values(replies[0]))
            session.write(values)
            batch.write({"session_id": session.id})

    def _first_response_values(self, reply):
        self.ensure_one()
        start, end = self.first_inbound_at, max(reply.timestamp, self.first_inbound_at)
        business = self._business_hours(start, end) * 60
        values = {
            "first_response_at": end,
            "first_response_user_id": reply.author_id.id,
            "first_response_minutes": _hours(start, end) * 60,
            "first_response_business_minutes": business,
        }
        if self.sla_status == "pending":
            values["sla_status"] = "met" if business <= self.sla_minutes else "missed"
        return values

    def _sync_conversation(self, vals):
        """The conversation's assignee, team or lead changed: the open sessions follow."""
        values = {key: vals[key] for key in ("user_id", "team_id") if key in vals}
        for session in self:
            session_values = dict(values)
            if vals.get("lead_id") and vals["lead_id"] != session.lead_id.id:
                session_values.update(session._lead_values(self.env["crm.lead"].browse(vals["lead_id"])))
            if session_values:
                session.write(session_values)

    # ------------------------------------------------------------
    # Closing
    # ------------------------------------------------------------

    def _close(self, reason="closed"):
        """Close these open sessions: resolution time, a missed target if never answered, the survey."""
        now = fields.Datetime.now()
        sessions = self.filtered(lambda s: s.state == "open")
        for session in sessions:
            # an idle session was resolved by its last message, not by the cron noticing it
            end = session.last_message_at if reason == "idle" and session.last_message_at else now
            end = max(end, session.first_inbound_at)
            values = {
                "state": "closed",
                "closed_at": now,
                "close_reason": reason,
                "waiting_since": False,
                "resolution_hours": _hours(session.first_inbound_at, end),
                "resolution_business_hours": session._business_hours(session.first_inbound_at, end),
            }
            if session.sla_status == "pending":
                values["sla_status"] = "missed"
            session.write(values)
        sessions._csat_request()
        return sessions

    @api.model
    def _cron_close_idle(self):
        """Close the sessions without any message for ``whatsapp_crm.session_idle_hours`` hours."""
        param = self.env["ir.config_parameter"].sudo().get_param("whatsapp_crm.session_idle_hours")
        try:
            idle_hours = float(param) if param else DEFAULT_IDLE_HOURS
        except ValueError:
            idle_hours = DEFAULT_IDLE_HOURS
        limit = fields.Datetime.now() - timedelta(hours=idle_hours)
        self.search([("state", "=", "open"), ("last_message_at", "<", limit)])._close("idle")

    # ------------------------------------------------------------
    # Satisfaction survey (see crm.whatsapp.account's survey wording)
    # ------------------------------------------------------------

    def _csat_request(self):
        """Hook: ask closed sessions for a rating. The survey extends this."""
        return self.browse()

    def _rating_get_operator(self):
        return self.user_id.partner_id or self.first_response_user_id.partner_id

    def action_open_conversation(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.whatsapp.conversation",
            "res_id": self.conversation_id.id,
            "view_mode": "form",
        }
