from odoo import fields, models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    whatsapp_assignment = fields.Selection(
        [("round_robin", "Round-robin"), ("least_open", "Fewest open conversations")],
        string="WhatsApp Assignment",
        default="round_robin",
        required=True,
        help="How new WhatsApp conversations of this team go to its available members.",
    )
    whatsapp_reassign_minutes = fields.Integer(
        "Offer to the Next Member After (minutes)",
        default=0,
        help="A conversation whose customer waits longer than this for its assignee goes to the next "
        "available member. 0 never moves it.",
    )
    whatsapp_last_user_id = fields.Many2one(
        "res.users", "Last WhatsApp Assignee", readonly=True, help="Where the round-robin continues."
    )
