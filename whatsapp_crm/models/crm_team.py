from odoo import fields, models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    whatsapp_resource_calendar_id = fields.Many2one(
        "resource.calendar",
        "WhatsApp Working Hours",
        help="Business hours of the team's WhatsApp service: response and resolution times are also counted "
        "in these hours. Empty: the company's working hours.",
    )
    whatsapp_sla_minutes = fields.Integer(
        "WhatsApp First Response Target (minutes)",
        default=60,
        help="A WhatsApp chat meets the target when its first reply comes within this many business minutes. "
        "0: no target.",
    )

    def _whatsapp_calendar(self, company):
        """The working hours counting business time of this team, else of its company or ``company``."""
        team = self[:1]
        return team.whatsapp_resource_calendar_id or (team.company_id or company).resource_calendar_id
