from odoo import fields, models
from odoo.tools import SQL


class CrmWhatsappReportPipeline(models.Model):
    """Pipeline report: the leads WhatsApp sessions produced, their outcome and revenue."""

    _name = "crm.whatsapp.report.pipeline"
    _inherit = ["crm.whatsapp.report.mixin"]
    _description = "WhatsApp Pipeline Report"
    _auto = False
    _order = "date desc"
    _rec_name = "lead_id"
    _depends = {
        "crm.whatsapp.session": [
            "lead_id",
            "account_id",
            "company_id",
            "source_id",
            "medium_id",
            "campaign_id",
            "ad_id",
            "lead_outcome",
            "lead_created",
        ],
        "crm.lead": [
            "create_date",
            "date_closed",
            "team_id",
            "user_id",
            "stage_id",
            "source_id",
            "medium_id",
            "campaign_id",
            "whatsapp_ad_id",
            "expected_revenue",
        ],
    }

    lead_id = fields.Many2one("crm.lead", "Lead", readonly=True)
    session_id = fields.Many2one("crm.whatsapp.session", "Session", readonly=True)
    date = fields.Datetime("Created", readonly=True)
    date_closed = fields.Datetime("Closed", readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", "WhatsApp Account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", "Salesperson", readonly=True)
    stage_id = fields.Many2one("crm.stage", "Stage", readonly=True)
    source_id = fields.Many2one("utm.source", "Source", readonly=True)
    medium_id = fields.Many2one("utm.medium", "Medium", readonly=True)
    campaign_id = fields.Many2one("utm.campaign", "Campaign", readonly=True)
    ad_id = fields.Char("Click-to-WhatsApp Ad ID", readonly=True)
    outcome = fields.Selection([("open", "Open"), ("won", "Won"), ("lost", "Lost")], readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    lead_count = fields.Integer("Leads", readonly=True, aggregator="sum")
    won_count = fields.Integer("Won", readonly=True, aggregator="sum")
    lost_count = fields.Integer("Lost", readonly=True, aggregator="sum")
    conversion_rate = fields.Float("Conversion (%)", readonly=True, aggregator="avg", help="Share of leads won.")
    expected_revenue = fields.Monetary("Expected Revenue", readonly=True, currency_field="currency_id")
    won_revenue = fields.Monetary("Won Revenue", readonly=True, currency_field="currency_id")

    def _query(self):
        return SQL(
            """
            SELECT s.id AS id,
                   s.lead_id,
                   s.id AS session_id,
                   l.create_date AS date,
                   l.date_closed,
                   s.account_id,
                   s.company_id,
                   l.team_id,
                   l.user_id,
                   l.stage_id,
                   COALESCE(l.source_id, s.source_id) AS source_id,
                   COALESCE(l.medium_id, s.medium_id) AS medium_id,
                   COALESCE(l.campaign_id, s.campaign_id) AS campaign_id,
                   COALESCE(l.whatsapp_ad_id, s.ad_id) AS ad_id,
                   COALESCE(s.lead_outcome, 'open') AS outcome,
                   co.currency_id,
                   1 AS lead_count,
                   CASE WHEN s.lead_outcome = 'won' THEN 1 ELSE 0 END AS won_count,
                   CASE WHEN s.lead_outcome = 'lost' THEN 1 ELSE 0 END AS lost_count,
                   CASE WHEN s.lead_outcome = 'won' THEN 100.0 ELSE 0.0 END AS conversion_rate,
                   l.expected_revenue,
                   CASE WHEN s.lead_outcome = 'won' THEN l.expected_revenue ELSE 0 END AS won_revenue
              FROM crm_whatsapp_session s
              JOIN crm_lead l ON l.id = s.lead_id
         LEFT JOIN res_company co ON co.id = s.company_id
             WHERE s.lead_created
            """
        )
