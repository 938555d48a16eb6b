from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    whatsapp_conversation_ids = fields.One2many(
        "crm.whatsapp.conversation", "partner_id", "WhatsApp Conversations"
    )
    whatsapp_message_ids = fields.One2many("crm.whatsapp.message", "partner_id", "WhatsApp Messages")
    whatsapp_message_count = fields.Integer(compute="_compute_whatsapp_message_count")

    def _compute_whatsapp_message_count(self):
        counts = dict(
            self.env["crm.whatsapp.message"]._read_group(
                [("partner_id", "in", self.ids)], ["partner_id"], ["__count"]
            )
        )
        for partner in self:
            partner.whatsapp_message_count = counts.get(partner, 0)
