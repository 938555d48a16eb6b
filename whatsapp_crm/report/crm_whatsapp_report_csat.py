from odoo import fields, models
from odoo.tools import SQL

from odoo.addons.rating.models.rating_data import RATING_LIMIT_OK, RATING_LIMIT_SATISFIED, RATING_TEXT


class CrmWhatsappReportCsat(models.Model):
    """Satisfaction report: the customers' ratings of sessions, with their comments."""

    _name = "crm.whatsapp.report.csat"
    _inherit = ["crm.whatsapp.report.mixin"]
    _description = "WhatsApp Satisfaction Report"
    _auto = False
    _order = "date desc"
    _rec_name = "session_id"
    _depends = {
        "rating.rating": ["res_model", "res_id", "rating", "feedback", "consumed", "write_date"],
        "crm.whatsapp.session": ["account_id", "company_id", "team_id", "user_id", "partner_id"],
    }

    rating_id = fields.Many2one("rating.rating", "Customer Rating", readonly=True)
    session_id = fields.Many2one("crm.whatsapp.session", "Session", readonly=True)
    date = fields.Datetime("Rated", readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", "WhatsApp Account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", "Agent", readonly=True)
    partner_id = fields.Many2one("res.partner", "Customer", readonly=True)
    rating_text = fields.Selection(RATING_TEXT, "Rating", readonly=True)
    comment = fields.Text(readonly=True)
    rating = fields.Float("Rating (avg)", readonly=True, aggregator="avg")
    satisfaction_rate = fields.Float(
        "Satisfied (%)", readonly=True, aggregator="avg", help="Share of ratings that are good."
    )
    rating_count = fields.Integer("Ratings", readonly=True, aggregator="sum")

    def _query(self):
        return SQL(
            """
            SELECT r.id AS id,
                   r.id AS rating_id,
                   s.id AS session_id,
                   r.write_date AS date,
                   s.account_id,
                   s.company_id,
                   s.team_id,
                   s.user_id,
                   s.partner_id,
                   CASE WHEN r.rating >= %(satisfied)s THEN 'top'
                        WHEN r.rating >= %(okay)s THEN 'ok'
                        ELSE 'ko'
                   END AS rating_text,
                   r.feedback AS comment,
                   r.rating,
                   CASE WHEN r.rating >= %(satisfied)s THEN 100.0 ELSE 0.0 END AS satisfaction_rate,
                   1 AS rating_count
              FROM rating_rating r
              JOIN crm_whatsapp_session s ON s.id = r.res_id
             WHERE r.res_model = 'crm.whatsapp.session' AND r.consumed AND r.rating > 0
            """,
            satisfied=RATING_LIMIT_SATISFIED,
            okay=RATING_LIMIT_OK,
        )
