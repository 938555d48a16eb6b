from datetime import timedelta

from odoo import api, fields, models

SERVICE_WINDOW = timedelta(hours=24)


class CrmWhatsappConversation(models.Model):
    _name = "crm.whatsapp.conversation"
    _description = "WhatsApp Conversation"
    _inherit = ["mail.thread"]
    _order = "last_message_at desc, id desc"
    _rec_name = "display_name"

    account_id = fields.Many2one("crm.whatsapp.account", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    wa_id = fields.Char("WhatsApp ID", index=True, help="The customer's WhatsApp number (digits, no +).")
    wa_user_id = fields.Char(
        "Business-scoped User ID", index=True, help="For customers who chat with a username and no number."
    )
    profile_name = fields.Char()
    partner_id = fields.Many2one("res.partner", "Contact", index=True, tracking=True)
    lead_id = fields.Many2one("crm.lead", "Current Lead", index=True, tracking=True)
    user_id = fields.Many2one("res.users", "Assigned To", index=True, tracking=True)
    team_id = fields.Many2one("crm.team", "Sales Team", tracking=True)
    state = fields.Selection(
        [("new", "New"), ("open", "Open"), ("pending", "Pending"), ("closed", "Closed")],
        default="new",
        required=True,
        tracking=True,
    )
    last_inbound_at = fields.Datetime("Last Customer Message", readonly=True)
    last_message_at = fields.Datetime(readonly=True)
    window_expires_at = fields.Datetime(
        "Window Expires", compute="_compute_window_expires_at", store=True,
        help="Free text may be sent until 24 hours after the customer's last message.",
    )
    can_send_free_text = fields.Boolean(compute="_compute_can_send_free_text")
    message_ids_wa = fields.One2many("crm.whatsapp.message", "conversation_id", "WhatsApp Messages")
    wa_message_count = fields.Integer(compute="_compute_wa_message_count")

    _sql_constraints = [
        ("account_wa_id_unique", "unique(account_id, wa_id)", "One conversation per customer number and account."),
        ("account_wa_user_id_unique", "unique(account_id, wa_user_id)", "One conversation per user and account."),
    ]

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

    def _recipient_payload(self):
        """Addressing of an outbound message: the number, else the business-scoped user id."""
        self.ensure_one()
        if self.wa_id:
            return {"to": f"+{self.wa_id}"}
        return {"recipient": self.wa_user_id}
