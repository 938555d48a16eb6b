from odoo import api, fields, models

from .crm_whatsapp_session import DONE_STATES


class CrmWhatsappMessage(models.Model):
    """What reporting records of each message: its session, and whether a person wrote it."""

    _inherit = "crm.whatsapp.message"

    session_id = fields.Many2one("crm.whatsapp.session", "Session", index="btree_not_null", ondelete="set null")
    is_automatic = fields.Boolean(
        "Automatic",
        readonly=True,
        help="Sent by a bot, an auto-reply or a survey: it is not an answer of the business "
        "(response times ignore it).",
    )

    @api.model_create_multi
    def create(self, vals_list):
        messages = super().create(vals_list)
        # e.g. replies from the WhatsApp Business app (coexistence), stored already sent
        done = messages.filtered(lambda m: m.direction == "outbound" and m.state in DONE_STATES)
        if done:
            self.env["crm.whatsapp.session"].sudo()._register_outbound(done.sudo())
        return messages

    def write(self, vals):
        arriving = self.browse()
        if vals.get("state") in DONE_STATES:
            arriving = self.filtered(lambda m: m.direction == "outbound" and m.state not in DONE_STATES)
        result = super().write(vals)
        if arriving:
            self.env["crm.whatsapp.session"].sudo()._register_outbound(arriving.sudo())
        return result
