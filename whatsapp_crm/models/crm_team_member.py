from odoo import fields, models


class CrmTeamMember(models.Model):
    _inherit = "crm.team.member"

    whatsapp_available = fields.Boolean(
        "Available for WhatsApp",
        default=True,
        help="Receives new WhatsApp conversations of the team. Unavailable members are skipped.",
    )
