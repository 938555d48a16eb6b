from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_whatsapp_session import HOURS, SLA_STATUSES, WEEKDAYS


class CrmWhatsappReportConversation(models.Model):
    """Conversations report: one row per session, with its response and resolution times."""

    _name = "crm.whatsapp.report.conversation"
    _inherit = ["crm.whatsapp.report.mixin"]
    _description = "WhatsApp Conversations Report"
    _auto = False
    _order = "date desc"
    _rec_name = "session_id"
    _depends = {
        "crm.whatsapp.session": [
            "conversation_id",
            "account_id",
            "company_id",
            "team_id",
            "user_id",
            "partner_id",
            "first_response_user_id",
            "state",
            "first_inbound_at",
            "closed_at",
            "opened_weekday",
            "opened_hour",
            "sla_status",
            "source_id",
            "medium_id",
            "campaign_id",
            "ad_id",
            "lead_id",
            "first_response_at",
            "first_response_minutes",
            "first_response_business_minutes",
            "resolution_hours",
            "resolution_business_hours",
            "waiting_since",
            "inbound_count",
            "outbound_count",
            "automatic_count",
            "lead_created",
            "csat_rating",
        ],
    }

    session_id = fields.Many2one("crm.whatsapp.session", "Session", readonly=True)
    conversation_id = fields.Many2one("crm.whatsapp.conversation", "Conversation", readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", "WhatsApp Account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", "Agent", readonly=True)
    partner_id = fields.Many2one("res.partner", "Customer", readonly=True)
    first_response_user_id = fields.Many2one("res.users", "First Reply By", readonly=True)
    state = fields.Selection([("open", "Open"), ("closed", "Closed")], readonly=True)
    date = fields.Datetime("First Customer Message", readonly=True)
    closed_at = fields.Datetime("Closed", readonly=True)
    weekday = fields.Selection(WEEKDAYS, "Day of Week", readonly=True)
    hour = fields.Selection(HOURS, "Hour of Day", readonly=True)
    sla_status = fields.Selection(SLA_STATUSES, "First Response Target", readonly=True)
    source_id = fields.Many2one("utm.source", "Source", readonly=True)
    medium_id = fields.Many2one("utm.medium", "Medium", readonly=True)
    campaign_id = fields.Many2one("utm.campaign", "Campaign", readonly=True)
    ad_id = fields.Char("Click-to-WhatsApp Ad ID", readonly=True)
    lead_id = fields.Many2one("crm.lead", "Lead", readonly=True)
    first_response_minutes = fields.Float("First Response (min, avg)", readonly=True, aggregator="avg")
    first_response_median = fields.Float("First Response (min, median)", readonly=True, aggregator="median")
    first_response_business_minutes = fields.Float(
        "First Response (business min, avg)", readonly=True, aggregator="avg"
    )
    first_response_business_median = fields.Float(
        "First Response (business min, median)", readonly=True, aggregator="median"
    )
    sla_rate = fields.Float(
        "Within Target (%)",
        readonly=True,
        aggregator="avg",
        help="Share of the answered (or closed unanswered) sessions whose first reply met the team's target.",
    )
    resolution_hours = fields.Float("Resolution (h, avg)", readonly=True, aggregator="avg")
    resolution_business_hours = fields.Float("Resolution (business h, avg)", readonly=True, aggregator="avg")
    open_count = fields.Integer("Open (backlog)", readonly=True, aggregator="sum")
    unanswered_count = fields.Integer("Unanswered", readonly=True, aggregator="sum")
    waiting_hours = fields.Float(
        "Longest Waiting (h)",
        readonly=True,
        aggregator="max",
        help="Of open sessions: hours since the oldest customer message not answered yet.",
    )
    inbound_count = fields.Integer("Customer Messages", readonly=True, aggregator="sum")
    outbound_count = fields.Integer("Our Messages", readonly=True, aggregator="sum")
    automatic_count = fields.Integer("Automatic Messages", readonly=True, aggregator="sum")
    lead_count = fields.Integer("Leads Produced", readonly=True, aggregator="sum")
    csat_rating = fields.Float("Satisfaction (avg)", readonly=True, aggregator="avg")

    def _query(self):
        return SQL(
            """
            SELECT s.id AS id,
                   s.id AS session_id,
                   s.conversation_id,
                   s.account_id,
                   s.company_id,
                   s.team_id,
                   s.user_id,
                   s.partner_id,
                   s.first_response_user_id,
                   s.state,
                   s.first_inbound_at AS date,
                   s.closed_at,
                   s.opened_weekday AS weekday,
                   s.opened_hour AS hour,
                   s.sla_status,
                   s.source_id,
                   s.medium_id,
                   s.campaign_id,
                   s.ad_id,
                   s.lead_id,
                   CASE WHEN s.first_response_at IS NOT NULL THEN s.first_response_minutes END
                       AS first_response_minutes,
                   CASE WHEN s.first_response_at IS NOT NULL THEN s.first_response_minutes END
                       AS first_response_median,
                   CASE WHEN s.first_response_at IS NOT NULL THEN s.first_response_business_minutes END
                       AS first_response_business_minutes,
                   CASE WHEN s.first_response_at IS NOT NULL THEN s.first_response_business_minutes END
                       AS first_response_business_median,
                   CASE s.sla_status WHEN 'met' THEN 100.0 WHEN 'missed' THEN 0.0 END AS sla_rate,
                   CASE WHEN s.state = 'closed' THEN s.resolution_hours END AS resolution_hours,
                   CASE WHEN s.state = 'closed' THEN s.resolution_business_hours END AS resolution_business_hours,
                   CASE WHEN s.state = 'open' THEN 1 ELSE 0 END AS open_count,
                   CASE WHEN s.first_response_at IS NULL THEN 1 ELSE 0 END AS unanswered_count,
                   CASE WHEN s.state = 'open' AND s.waiting_since IS NOT NULL
                        THEN EXTRACT(EPOCH FROM (NOW() AT TIME ZONE 'UTC') - s.waiting_since) / 3600.0
                   END AS waiting_hours,
                   s.inbound_count,
                   s.outbound_count,
                   s.automatic_count,
                   CASE WHEN s.lead_created THEN 1 ELSE 0 END AS lead_count,
                   NULLIF(s.csat_rating, 0) AS csat_rating
              FROM crm_whatsapp_session s
            """
        )
