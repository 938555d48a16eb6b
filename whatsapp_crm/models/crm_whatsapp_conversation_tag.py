from random import randint

from odoo import fields, models


class CrmWhatsappConversationTag(models.Model):
    _name = "crm.whatsapp.conversation.tag"
    _description = "WhatsApp Conversation Tag"
    _order = "name"

    def _default_color(self):
        return randint(1, 11)

    name = fields.Char(required=True, translate=True)
    color = fields.Integer(default=_default_color)
    active = fields.Boolean(default=True)

    _sql_constraints = [("name_unique", "unique(name)", "This tag already exists.")]
