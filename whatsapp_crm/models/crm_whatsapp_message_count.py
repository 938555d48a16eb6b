from odoo import fields, models

from .crm_whatsapp_message import MESSAGE_TYPES


class CrmWhatsappMessageCount(models.AbstractModel):
    """A table of message counts: one row per ``date`` (defined by each table) and kind of message,
    new rows ``pending`` until the compaction adds them up (see crm_whatsapp_message_stat.py)."""

    _name = "crm.whatsapp.message.count"
    _description = "WhatsApp Message Counts"
    _log_access = False

    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], required=True, readonly=True)
    message_type = fields.Selection(MESSAGE_TYPES, "Type", required=True, readonly=True)
    state = fields.Char("Status", required=True, readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", required=True, readonly=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", readonly=True, ondelete="cascade")
    user_id = fields.Many2one("res.users", "Agent", readonly=True, ondelete="set null")
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True, ondelete="set null")
    template_id = fields.Many2one("crm.whatsapp.template", readonly=True, ondelete="set null")
    error_code = fields.Integer(readonly=True)
    is_automatic = fields.Boolean("Automatic", readonly=True)
    message_count = fields.Integer("Messages", readonly=True)
    pending = fields.Boolean(readonly=True, help="Counted since the last compaction, not added up yet.")
