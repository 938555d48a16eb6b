from odoo import fields, models


class CrmLead(models.Model):
    _inherit = "crm.lead"

    whatsapp_conversation_ids = fields.One2many("crm.whatsapp.conversation", "lead_id", "WhatsApp Conversations")
    whatsapp_message_ids = fields.One2many("crm.whatsapp.message", "lead_id", "WhatsApp Messages")
    whatsapp_message_count = fields.Integer(compute="_compute_whatsapp_message_count")

    def _compute_whatsapp_message_count(self):
        counts = dict(
            self.env["crm.whatsapp.message"]._read_group([("lead_id", "in", self.ids)], ["lead_id"], ["__count"])
        )
        for lead in self:
            lead.whatsapp_message_count = counts.get(lead, 0)
