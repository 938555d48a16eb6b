from odoo import api, fields, models
from odoo.exceptions import UserError


class MailMessage(models.Model):
    """Chatter notes of outbound WhatsApp messages have their own type, as SMS do, so that the web
    client shows their notifications as WhatsApp and opens their failures as such."""

    _inherit = "mail.message"

    message_type = fields.Selection(
        selection_add=[("whatsapp_crm", "WhatsApp")],
        ondelete={"whatsapp_crm": lambda messages: messages.write({"message_type": "comment"})},
    )

    @api.model
    def whatsapp_failure_action(self, mail_message_id):
        """The failed WhatsApp message of a chatter note, to read why and resend it (chatter's
        failure icon)."""
        message = self.env["crm.whatsapp.message"].search([("mail_message_id", "=", int(mail_message_id))], limit=1)
        if not message:
            raise UserError(self.env._("This WhatsApp message is not available."))
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.whatsapp.message",
            "res_id": message.id,
            "views": [[False, "form"]],
            "target": "new",
        }
