from odoo import models


class CrmWhatsappConversation(models.Model):
    """A deleted conversation takes its messages out of the messages report's counts (the
    database deletes the messages themselves, without the ORM)."""

    _inherit = "crm.whatsapp.conversation"

    def unlink(self):
        self.check_access("unlink")  # counts are taken out only of what is deleted
        messages = self.env["crm.whatsapp.message"].sudo().search([("conversation_id", "in", self.ids)])
        self.env["crm.whatsapp.message.stat"]._count(messages, sign=-1)
        return super().unlink()
