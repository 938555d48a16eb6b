from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError
from odoo.osv import expression

from ..tools import webhook_payload as wp
from ..tools.phone import wa_digits, wa_id_variants

SERVICE_WINDOW = timedelta(hours=24)


class InboundBatch:
    """What the messages of one batch share: the conversations one of them reopened."""

    def __init__(self):
        self.reopened = set()


class CrmWhatsappConversation(models.Model):
    _name = "crm.whatsapp.conversation"
    _description = "WhatsApp Conversation"
    _inherit = ["mail.thread"]
    _order = "last_message_at desc, id desc"
    # display_name is computed: name_search looks in what it shows (see _search_display_name)
    _rec_names_search = ["partner_id.name", "profile_name", "wa_id", "wa_user_id"]

    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    wa_id = fields.Char("WhatsApp ID", index=True, help="The customer's WhatsApp number (digits, no +).")
    wa_user_id = fields.Char(
        "Business-scoped User ID", index=True, help="For customers who chat with a username and no number."
    )
    profile_name = fields.Char()
    partner_id = fields.Many2one("res.partner", "Contact", index=True, tracking=True)
    lead_id = fields.Many2one("crm.lead", "Current Lead", index=True, tracking=True)
    user_id = fields.Many2one("res.users", "Assigned To", index=True, tracking=True)
    team_id = fields.Many2one("crm.team", "Sales Team", index="btree_not_null", tracking=True)
    state = fields.Selection(
        [("new", "New"), ("open", "Open"), ("pending", "Pending"), ("closed", "Closed")],
        default="new",
        required=True,
        index=True,
        tracking=True,
        help="New: not answered yet. Open: the customer waits for us. Pending: we answered and wait for "
        "the customer. Closed: done; a customer message reopens it.",
    )
    last_inbound_at = fields.Datetime("Last Customer Message", readonly=True)
    last_message_at = fields.Datetime(readonly=True)
    window_expires_at = fields.Datetime(
        "Window Expires",
        compute="_compute_window_expires_at",
        store=True,
        help="Free text may be sent until 24 hours after the customer's last message.",
    )
    can_send_free_text = fields.Boolean("Window Open", compute="_compute_can_send_free_text")
    message_ids_wa = fields.One2many("crm.whatsapp.message", "conversation_id", "WhatsApp Messages")
    wa_message_count = fields.Integer(compute="_compute_wa_message_count")

    _sql_constraints = [
        ("account_wa_id_unique", "unique(account_id, wa_id)", "One conversation per customer number and account."),
        ("account_wa_user_id_unique", "unique(account_id, wa_user_id)", "One conversation per user and account."),
    ]

    def init(self):
        # the inbox: its default order (_order), to read the first page without sorting them all
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_whatsapp_conversation_inbox_index
               ON crm_whatsapp_conversation (last_message_at DESC, id DESC)"""
        )

    @api.depends("wa_id", "wa_user_id", "partner_id", "profile_name")
    def _compute_display_name(self):
        for conversation in self:
            who = conversation.partner_id.name or conversation.profile_name
            number = f"+{conversation.wa_id}" if conversation.wa_id else conversation.wa_user_id
            conversation.display_name = f"{who} ({number})" if who else number or ""

    @api.depends("last_inbound_at")
    def _compute_window_expires_at(self):
        for conversation in self:
            last = conversation.last_inbound_at
            conversation.window_expires_at = last + SERVICE_WINDOW if last else False

    @api.depends("window_expires_at")
    def _compute_can_send_free_text(self):
        now = fields.Datetime.now()
        for conversation in self:
            conversation.can_send_free_text = bool(
                conversation.window_expires_at and conversation.window_expires_at > now
            )

    def _compute_wa_message_count(self):
        counts = dict(
            self.env["crm.whatsapp.message"]._read_group(
                [("conversation_id", "in", self.ids)], ["conversation_id"], ["__count"]
            )
        )
        for conversation in self:
            conversation.wa_message_count = counts.get(conversation, 0)

    @api.model
    def _search_display_name(self, operator, value):
        """The name is computed (contact, profile name, number): search its parts, and the number
        also as digits ("+55 11 98765" finds 551198765...)."""
        domain = super()._search_display_name(operator, value)
        digits = "".join(filter(str.isdigit, value)) if isinstance(value, str) else ""
        if digits and digits != value and operator not in expression.NEGATIVE_TERM_OPERATORS:
            domain = expression.OR([domain, [("wa_id", operator, digits)]])
        return domain

    # ------------------------------------------------------------
    # Only the system writes what the system knows
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_system_fields(self):
        """Fields only the system writes: the customer's identity, the account, the window and
        the opt-outs WhatsApp reports. State changes go through the buttons. Extend to protect more."""
        return {
            "account_id",
            "company_id",
            "wa_id",
            "wa_user_id",
            "profile_name",
            "state",
            "last_inbound_at",
            "last_message_at",
            "window_expires_at",
        }

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("WhatsApp conversations are started by WhatsApp or by sending a message."))
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su:
            forbidden = self._whatsapp_system_fields() & vals.keys()
            if forbidden:
                raise AccessError(
                    _(
                        "Only the system changes these fields of a WhatsApp conversation: %s",
                        ", ".join(sorted(forbidden)),
                    )
                )
            if vals.get("lead_id"):
                # a user links a lead they can read, nothing else
                self.env["crm.lead"].browse(vals["lead_id"]).check_access("read")
            if vals.get("partner_id"):
                self.env["res.partner"].browse(vals["partner_id"]).check_access("read")
        return super().write(vals)

    # ------------------------------------------------------------
    # The send API (see mail_thread.py)
    # ------------------------------------------------------------

    def _whatsapp_get_recipients_info(self, account=None):
        """A conversation is its customer: its number (or user id), contact, lead and assignee.
        On another account, the same customer's conversation there."""
        result = {}
        for conversation in self:
            same = not account or conversation.account_id == account
            result[conversation.id] = {
                "partner": conversation.partner_id,
                "number": f"+{conversation.wa_id}" if conversation.wa_id else False,
                "lead": conversation.lead_id,
                "conversation": conversation.sudo() if same else self.sudo().browse(),
                "user": conversation.user_id,
            }
        if account:
            self._whatsapp_find_conversations(account, result)
            for conversation in self.filtered(lambda c: c.wa_user_id and not c.wa_id):
                info = result[conversation.id]
                info["conversation"] = info["conversation"] or self.sudo()._find(
                    account, wa_user_id=conversation.wa_user_id
                )
        return result

    def _whatsapp_conversations(self):
        return self.sudo()

    def _recipient_payload(self):
        """Addressing of an outbound message: the number, else the business-scoped user id."""
        self.ensure_one()
        if self.wa_id:
            return {"to": f"+{self.wa_id}"}
        return {"recipient": self.wa_user_id}

    # ------------------------------------------------------------
    # Finding conversations
    # ------------------------------------------------------------

    @api.model
    def _find(self, account, wa_id=None, wa_user_id=None):
        """The conversation of a customer number (any WhatsApp spelling of it) or user id."""
        domain = []
        if wa_id:
            domain = [("wa_id", "in", wa_id_variants(wa_id))]
        if wa_user_id:
            domain = ["|", *domain, ("wa_user_id", "=", wa_user_id)] if domain else [("wa_user_id", "=", wa_user_id)]
        if not domain:
            return self.browse()
        return self.search([("account_id", "=", account.id), *domain], order="id", limit=1)

    @api.model
    def _find_or_create(self, account, wa_id=None, wa_user_id=None, profile_name=None, partner=None, user=None):
        """The conversation of ``account`` with a customer, created (with its contact) if needed.

        The customer is a number (``wa_id``), a business-scoped user id, or else the number of
        ``partner``. A new conversation goes to ``user``, else to the next agent in turn.
        Inbound processing calls this under a per-customer lock.
        """
        wa_id = wa_digits(wa_id) or (partner._whatsapp_wa_id() if partner and not wa_user_id else False)
        if not wa_id and not wa_user_id:
            return self.browse()
        conversation = self._find(account, wa_id, wa_user_id)
        if conversation:
            return conversation._update_identity(wa_id, wa_user_id, profile_name, partner)
        if not partner:
            Partner = self.env["res.partner"]
            if wa_id:
                partner = Partner._whatsapp_find_or_create(wa_id, profile_name, company=account.company_id)
            else:
                partner = Partner.sudo().create({"name": profile_name or wa_user_id}).with_env(self.env)
        user = user or self._next_agent(account)
        # no "created" note nor the system as follower in the chat's own chatter: the lead and
        # the contact tell the story
        Quiet = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True)
        return Quiet.create(
            {
                "account_id": account.id,
                "wa_id": wa_id or False,
                "wa_user_id": wa_user_id or False,
                "profile_name": profile_name,
                "partner_id": partner.id,
                "team_id": account.team_id.id,
                "user_id": user.id,
            }
        ).with_env(self.env)

    def _update_identity(self, wa_id=None, wa_user_id=None, profile_name=None, partner=None):
        """Complete the customer's ids and refresh the profile name; return self."""
        self.ensure_one()
        updates = {}
        if wa_user_id and not self.wa_user_id:
            updates["wa_user_id"] = wa_user_id
        if wa_id and not self.wa_id:
            updates["wa_id"] = wa_digits(wa_id)
        if profile_name and profile_name != self.profile_name:
            updates["profile_name"] = profile_name
        if partner and not self.partner_id:
            updates["partner_id"] = partner.id
        if updates:
            self.write(updates)
        return self

    @api.model
    def _next_agent(self, account):
        """Round-robin among the account's agents: the one after the last assigned (or nobody)."""
        agents = account.user_ids.filtered("active").sorted("id")
        if not agents:
            return agents
        last = self.search(
            [("account_id", "=", account.id), ("user_id", "in", agents.ids)], order="id desc", limit=1
        ).user_id
        if last not in agents:
            return agents[0]
        return agents[(list(agents).index(last) + 1) % len(agents)]

    # ------------------------------------------------------------
    # Inbound
    # ------------------------------------------------------------

    def _register_outbound(self, when):
        """We answered at ``when``: the conversation now waits for the customer."""
        for conversation in self:
            values = {"state": "pending"} if conversation.state in ("new", "open") else {}
            if not conversation.last_message_at or when > conversation.last_message_at:
                values["last_message_at"] = when
            if values:
                conversation.write(values)

    def _register_inbound(self, when):
        """A customer message at ``when``: refresh the service window (reopening is done by
        :meth:`_whatsapp_on_inbound`)."""
        self.ensure_one()
        values = {}
        if not self.last_inbound_at or when > self.last_inbound_at:
            values["last_inbound_at"] = when
        if not self.last_message_at or when > self.last_message_at:
            values["last_message_at"] = when
        if values:
            self.write(values)

    @api.model
    def _whatsapp_on_inbound(self, messages):
        """The inbound hook: called once per processed batch of webhook events, after its
        customer messages are stored and posted, in the processing transaction.

        :param messages: the ``crm.whatsapp.message`` records (inbound, state ``received``) this
            batch stored, of any type (text, media, reaction, edit, system, call...), in the order
            they were applied; each with its conversation, contact, lead and chatter post. A
            re-delivered message is not in it again. The batch may hold several customers,
            accounts and companies; the environment is the superuser's.

        Features that react to customer messages (consent keywords, the bot, auto-replies,
        routing, automation...) extend this method in their own file and call ``super()``;
        they work on the batch with a fixed number of queries, not one set per message.
        An exception here is logged and undoes only this hook's work: the messages stay stored.
        When anything in a batch fails, the batch (this hook included) is rolled back and applied
        again item by item, so the hook may run twice for it, the first run undone: what leaves
        the database waits for the commit (the send API queues its messages for a cron).
        """
        replied = messages.filtered(lambda m: m.message_type != "system")
        # a customer message reopens a closed chat, and one waiting for the customer
        replied.conversation_id.filtered(lambda c: c.state in ("closed", "pending")).write({"state": "open"})
        for conversation in messages.conversation_id.filtered(lambda c: not c.user_id):
            # no agent of the account took it: the lead's salesperson, else the team leader
            user = conversation.lead_id.user_id or (conversation.team_id or conversation.account_id.team_id).user_id
            if user:
                conversation.user_id = user

    @api.model
    def _whatsapp_inbound_batch(self):
        """The context of a batch of webhook events being applied: what its messages share
        (precommit data would not do: every savepoint of the batch runs and clears it)."""
        return {"whatsapp_inbound_batch": InboundBatch()}

    def _whatsapp_reopening(self):
        """Whether a customer message starts this conversation anew: it is closed, and no message
        of the batch being processed reopened it already (the inbound hook reopens it at the end
        of the batch)."""
        self.ensure_one()
        batch = self.env.context.get("whatsapp_inbound_batch")
        reopening = batch.reopened if batch else set()  # (outside a batch: no hook reopens it)
        if self.state != "closed" or self.id in reopening:
            return False
        reopening.add(self.id)
        return True

    def _apply_number_change(self, new_wa_id):
        """The customer moved to another number: follow them, unless that number has its own chat."""
        self.ensure_one()
        if self._find(self.account_id, new_wa_id):
            return
        self.wa_id = new_wa_id
        if self.partner_id:
            self.partner_id.mobile = f"+{new_wa_id}"

    @api.model
    def _whatsapp_webhook_user_preferences(self, account, value):
        """``user_preferences`` change (``_whatsapp_webhook_<field>``, see crm.whatsapp.webhook.event):
        noted in the customer's conversation and contact."""
        notes, contacts = [], value.get("contacts") or []
        for preference in value.get("user_preferences") or []:
            wa_id, user_id, profile_name, _username = wp.sender(preference, contacts)
            if not wa_id:
                wa_id = preference.get("wa_id")
            conversation = self._find_or_create(account, wa_id, user_id, profile_name)
            if not conversation:
                notes.append(_("Preference %s ignored: no customer.", preference.get("category")))
                continue
            body = _(
                "WhatsApp preference: %(category)s → %(value)s %(detail)s",
                category=preference.get("category"),
                value=preference.get("value"),
                detail=preference.get("detail") or "",
            )
            conversation.message_post(body=body)
            conversation.partner_id.message_post(body=body)
        return notes, False

    @api.model
    def _whatsapp_webhook_smb_app_state_sync(self, account, value):
        """Contacts of the WhatsApp Business app (coexistence): an added or edited contact names
        the customer's conversation and contact; a removal is only noted."""
        for sync in value.get("state_sync") or []:
            contact = sync.get("contact")
            if sync.get("type") != "contact" or not isinstance(contact, dict):
                continue
            wa_id = wp.check_wa_id(contact.get("phone_number"))
            name = contact.get("full_name") or contact.get("first_name")
            name = name if isinstance(name, str) and name.strip() else None
            if sync.get("action") == "remove":
                conversation = self._find(account, wa_id)
                if conversation:
                    conversation.message_post(body=_("Removed from the contacts of the WhatsApp Business app."))
                continue
            conversation = self._find_or_create(account, wa_id, profile_name=name)
            if name and conversation.partner_id and conversation.partner_id.name in (wa_id, f"+{wa_id}"):
                conversation.partner_id.name = name
        return [], False

    def _open_lead_domain(self):
        return [
            ("partner_id", "=", self.partner_id.id),
            ("active", "=", True),
            ("stage_id.is_won", "=", False),
            # a lead of another company is out of reach of this account's salespeople
            ("company_id", "in", [self.account_id.company_id.id, False]),
        ]

    def _ensure_lead(self, is_new, referral=None):
        """Link or create the current lead according to the account's lead policy.

        :param is_new: the conversation was just created or reopened after being closed.
        """
        self.ensure_one()
        policy = self.account_id.lead_policy
        current = self.lead_id if self.lead_id.active and not self.lead_id.stage_id.is_won else self.lead_id.browse()
        if policy == "new_conversation":
            lead = self.env["crm.lead"].create(self._lead_values(referral)) if is_new or not self.lead_id else current
        elif current or not self.partner_id:
            lead = current
        else:
            lead = self.env["crm.lead"].search(self._open_lead_domain(), order="id desc", limit=1)
            if not lead and policy == "no_open_lead":
                lead = self.env["crm.lead"].create(self._lead_values(referral))
        if lead and lead != self.lead_id:
            self.lead_id = lead
        return lead

    def _lead_values(self, referral=None):
        """A lead in the account's company. Its team, salesperson and customer are only those
        that company may use: a team or contact of another company is left out (the lead keeps
        the customer's name and number), it never makes the customer's message fail."""
        self.ensure_one()
        account = self.account_id
        company = account.company_id
        team = next(
            (t for t in (self.team_id, account.team_id) if t and t.company_id in (company, self.env["res.company"])),
            self.env["crm.team"],
        )
        user = next(
            (u for u in (self.user_id, team.user_id, account.team_id.user_id) if u and company in u.company_ids),
            self.env["res.users"],
        )
        partner = self.partner_id if self.partner_id.company_id in (company, self.env["res.company"]) else None
        values = {
            "name": _("WhatsApp: %s", self.profile_name or self.partner_id.name or self.display_name),
            "partner_id": partner.id if partner else False,
            "team_id": team.id,
            "user_id": user.id,
            "company_id": company.id,
            "source_id": self.env.ref("whatsapp_crm.utm_source_whatsapp").id,
        }
        if not partner:
            values.update(
                contact_name=self.profile_name or self.partner_id.name,
                mobile=f"+{self.wa_id}" if self.wa_id else False,
            )
        if referral:
            values.update(self.env["crm.lead"]._whatsapp_referral_values(referral))
        return values

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_open_messages(self):
        self.ensure_one()
        return self.env["crm.whatsapp.message"]._action_open(
            [("conversation_id", "=", self.id)], {"default_conversation_id": self.id}
        )

    def action_close(self):
        self.check_access("write")
        self.sudo().write({"state": "closed"})

    def action_reopen(self):
        self.check_access("write")
        self.sudo().write({"state": "open"})
