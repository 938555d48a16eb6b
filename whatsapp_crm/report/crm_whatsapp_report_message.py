from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_whatsapp_message import MESSAGE_TYPES
from ..models.crm_whatsapp_session import HOURS, WEEKDAYS


class CrmWhatsappReportMessage(models.Model):
    """Messages report: volume, and delivery, read and failure rates of what we sent."""

    _name = "crm.whatsapp.report.message"
    _inherit = ["crm.whatsapp.report.mixin"]
    _description = "WhatsApp Messages Report"
    _auto = False
    _order = "date desc"
    _rec_name = "message_id"
    _depends = {
        "crm.whatsapp.message": [
            "timestamp",
            "direction",
            "message_type",
            "state",
            "account_id",
            "company_id",
            "conversation_id",
            "author_id",
            "template_id",
            "error_code",
            "is_automatic",
        ],
        "crm.whatsapp.conversation": ["user_id", "team_id"],
        "crm.whatsapp.account": ["team_id", "company_id"],
        "crm.team": ["whatsapp_resource_calendar_id"],
    }

    message_id = fields.Many2one("crm.whatsapp.message", "Message", readonly=True)
    date = fields.Datetime(readonly=True)
    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], readonly=True)
    message_type = fields.Selection(MESSAGE_TYPES, "Type", readonly=True)
    state = fields.Selection(selection="_selection_state", string="Status", readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", "WhatsApp Account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    conversation_id = fields.Many2one("crm.whatsapp.conversation", "Conversation", readonly=True)
    user_id = fields.Many2one("res.users", "Agent", readonly=True, help="Who sent it, else who handles the chat.")
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True)
    template_id = fields.Many2one("crm.whatsapp.template", "Template", readonly=True)
    error_code = fields.Char("Error Code", readonly=True)
    is_automatic = fields.Boolean("Automatic", readonly=True)
    weekday = fields.Selection(WEEKDAYS, "Day of Week", readonly=True)
    hour = fields.Selection(HOURS, "Hour of Day", readonly=True)
    inbound_count = fields.Integer("Received", readonly=True, aggregator="sum")
    outbound_count = fields.Integer("Sent", readonly=True, aggregator="sum")
    delivered_rate = fields.Float(
        "Delivered (%)", readonly=True, aggregator="avg", help="Of the messages WhatsApp accepted or failed."
    )
    read_rate = fields.Float("Read (%)", readonly=True, aggregator="avg")
    failed_rate = fields.Float("Failed (%)", readonly=True, aggregator="avg")

    def _selection_state(self):
        return self.env["crm.whatsapp.message"]._fields["state"].selection

    def _query(self):
        # Columns from other tables are scalar subqueries: PostgreSQL computes them only for the
        # queries that use them (a pivot by day reads the message table alone).
        return SQL(
            """
            SELECT m.id AS id,
                   m.id AS message_id,
                   m.timestamp AS date,
                   m.direction,
                   m.message_type,
                   m.state,
                   m.account_id,
                   m.company_id,
                   m.conversation_id,
                   COALESCE(m.author_id, (SELECT c.user_id FROM crm_whatsapp_conversation c
                                           WHERE c.id = m.conversation_id)) AS user_id,
                   (SELECT c.team_id FROM crm_whatsapp_conversation c WHERE c.id = m.conversation_id) AS team_id,
                   m.template_id,
                   NULLIF(m.error_code, 0)::varchar AS error_code,
                   COALESCE(m.is_automatic, FALSE) AS is_automatic,
                   (EXTRACT(ISODOW FROM %(local)s)::int - 1)::varchar AS weekday,
                   to_char(%(local)s, 'HH24') AS hour,
                   CASE WHEN m.direction = 'inbound' THEN 1 ELSE 0 END AS inbound_count,
                   CASE WHEN m.direction = 'outbound' THEN 1 ELSE 0 END AS outbound_count,
                   CASE WHEN m.direction = 'outbound' AND m.state IN ('delivered', 'read', 'played') THEN 100.0
                        WHEN m.direction = 'outbound' AND m.state IN ('sent', 'failed') THEN 0.0
                   END AS delivered_rate,
                   CASE WHEN m.direction = 'outbound' AND m.state IN ('read', 'played') THEN 100.0
                        WHEN m.direction = 'outbound' AND m.state IN ('sent', 'delivered', 'failed') THEN 0.0
                   END AS read_rate,
                   CASE WHEN m.direction = 'outbound' AND m.state = 'failed' THEN 100.0
                        WHEN m.direction = 'outbound' AND m.state IN ('sent', 'delivered', 'read', 'played') THEN 0.0
                   END AS failed_rate
              FROM crm_whatsapp_message m
            """,
            local=SQL(
                """(m.timestamp AT TIME ZONE 'UTC' AT TIME ZONE COALESCE((
                    SELECT rc.tz
                      FROM crm_whatsapp_account a
                 LEFT JOIN crm_team t ON t.id = a.team_id
                 LEFT JOIN res_company co ON co.id = a.company_id
                      JOIN resource_calendar rc
                        ON rc.id = COALESCE(t.whatsapp_resource_calendar_id, co.resource_calendar_id)
                     WHERE a.id = m.account_id), 'UTC'))"""
            ),
        )
