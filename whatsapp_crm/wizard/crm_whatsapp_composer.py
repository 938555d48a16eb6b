from odoo import fields, models


class CrmWhatsappComposer(models.TransientModel):
    _name = "crm.whatsapp.composer"
    _description = "Send WhatsApp Message"

    body = fields.Text()
