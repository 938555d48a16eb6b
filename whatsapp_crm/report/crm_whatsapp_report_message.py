from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..models.crm_whatsapp_message import MESSAGE_TYPES
from ..models.crm_whatsapp_message_stat import KEY_COLUMNS, account_tz_sql
from ..models.crm_whatsapp_session import HOURS, WEEKDAYS


class CrmWhatsappReportMessage(models.Model):
    """Messages report: volume, and delivery, read and failure rates of what we sent.

    It reads the hourly counts of ``crm.whatsapp.message.stat`` (kept as messages come, go out and
    change status), not the messages: a row is the messages of one hour and kind, its "Count" their
    number, and a rate the share of the counted messages, not an average of rows. A grouping that
    needs no hour (by day, month, agent, template...) reads the same counts added up per day
    (``crm.whatsapp.message.stat.daily``, a second view), ten times fewer rows.
    """

    _name = "crm.whatsapp.report.message"
    _inherit = ["crm.whatsapp.report.mixin"]
    _description = "WhatsApp Messages Report"
    _auto = False
    _order = "date desc"
    _depends = {
        "crm.whatsapp.message.stat": [*KEY_COLUMNS, "message_count"],
        "crm.whatsapp.message.stat.daily": ["date", "message_count"],
        "crm.whatsapp.account": ["team_id", "company_id"],
        "crm.team": ["whatsapp_resource_calendar_id"],
    }
    # the share of the messages counted in the second column that are counted in the first
    _ratio_fields = {
        "delivered_rate": ("delivered_count", "reached_count"),
        "read_rate": ("read_count", "reached_count"),
        "failed_rate": ("failed_count", "reached_count"),
    }
    _count_field = "message_count"

    date = fields.Datetime(readonly=True)
    direction = fields.Selection([("inbound", "Inbound"), ("outbound", "Outbound")], readonly=True)
    message_type = fields.Selection(MESSAGE_TYPES, "Type", readonly=True)
    state = fields.Selection(selection="_selection_state", string="Status", readonly=True)
    account_id = fields.Many2one("crm.whatsapp.account", "WhatsApp Account", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    user_id = fields.Many2one("res.users", "Agent", readonly=True, help="Who sent it, else who handled the chat.")
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True)
    template_id = fields.Many2one("crm.whatsapp.template", "Template", readonly=True)
    error_code = fields.Char("Error Code", readonly=True)
    is_automatic = fields.Boolean("Automatic", readonly=True)
    weekday = fields.Selection(WEEKDAYS, "Day of Week", readonly=True)
    hour = fields.Selection(HOURS, "Hour of Day", readonly=True)
    message_count = fields.Integer("Messages", readonly=True, aggregator="sum")
    inbound_count = fields.Integer("Received", readonly=True, aggregator="sum")
    outbound_count = fields.Integer("Sent", readonly=True, aggregator="sum")
    reached_count = fields.Integer(
        "Accepted or Failed", readonly=True, aggregator="sum", help="Sent messages WhatsApp accepted or failed."
    )
    delivered_count = fields.Integer("Delivered", readonly=True, aggregator="sum")
    read_count = fields.Integer("Read", readonly=True, aggregator="sum")
    failed_count = fields.Integer("Failed", readonly=True, aggregator="sum")
    delivered_rate = fields.Float(
        "Delivered (%)", readonly=True, aggregator="avg", help="Of the messages WhatsApp accepted or failed."
    )
    read_rate = fields.Float("Read (%)", readonly=True, aggregator="avg")
    failed_rate = fields.Float("Failed (%)", readonly=True, aggregator="avg")

    def _selection_state(self):
        return self.env["crm.whatsapp.message"]._fields["state"].selection

    # what needs the hourly rows (a groupby, a domain or an order naming one of these)
    _hourly_terms = ("hour", "weekday", "date:hour", "date:minute", "date:second", "id")

    @property
    def _daily_table(self):
        return f"{self._table}_daily"

    @property
    def _table_sql(self):
        table_sql = super()._table_sql
        if not self.env.context.get("whatsapp_report_daily"):
            return table_sql
        # the daily view, with the same fields to flush first
        return SQL().join([SQL.identifier(self._daily_table), *(SQL(to_flush=field) for field in table_sql.to_flush)])

    def init(self):
        super().init()
        tools.drop_view_if_exists(self.env.cr, self._daily_table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._daily_table),
                self._query(self.env["crm.whatsapp.message.stat.daily"]._table),
            )
        )

    @api.model
    def _read_group(self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None):
        terms = {str(term) for term in (*groupby, *aggregates)}
        terms |= {str(leaf[0]) for leaf in (*domain, *having) if isinstance(leaf, (list, tuple)) and len(leaf) == 3}
        terms |= {term.split(":")[0] for term in terms} | {(order or "").strip().split(" ")[0]}
        report = self
        if not terms & set(self._hourly_terms):
            report = self.with_context(whatsapp_report_daily=True)
        return super(CrmWhatsappReportMessage, report)._read_group(
            domain, groupby, aggregates, having, offset, limit, order
        )

    def _query(self, table="crm_whatsapp_message_stat"):
        # The time zone is a scalar subquery: PostgreSQL computes it only for the queries that
        # group by the day of week or hour (a pivot by day reads the counts alone).
        return SQL(
            """
            SELECT s.id AS id,
                   s.date,
                   s.direction,
                   s.message_type,
                   s.state,
                   s.account_id,
                   s.company_id,
                   s.user_id,
                   s.team_id,
                   s.template_id,
                   NULLIF(s.error_code, 0)::varchar AS error_code,
                   s.is_automatic,
                   (EXTRACT(ISODOW FROM %(local)s)::int - 1)::varchar AS weekday,
                   to_char(%(local)s, 'HH24') AS hour,
                   s.message_count,
                   CASE WHEN s.direction = 'inbound' THEN s.message_count ELSE 0 END AS inbound_count,
                   CASE WHEN s.direction = 'outbound' THEN s.message_count ELSE 0 END AS outbound_count,
                   CASE WHEN %(reached)s THEN s.message_count ELSE 0 END AS reached_count,
                   CASE WHEN %(reached)s AND s.state IN ('delivered', 'read', 'played') THEN s.message_count
                        ELSE 0 END AS delivered_count,
                   CASE WHEN %(reached)s AND s.state IN ('read', 'played') THEN s.message_count
                        ELSE 0 END AS read_count,
                   CASE WHEN %(reached)s AND s.state = 'failed' THEN s.message_count ELSE 0 END AS failed_count,
                   CASE WHEN %(reached)s AND s.state IN ('delivered', 'read', 'played') THEN 100.0
                        WHEN %(reached)s THEN 0.0 END AS delivered_rate,
                   CASE WHEN %(reached)s AND s.state IN ('read', 'played') THEN 100.0
                        WHEN %(reached)s THEN 0.0 END AS read_rate,
                   CASE WHEN %(reached)s AND s.state = 'failed' THEN 100.0
                        WHEN %(reached)s THEN 0.0 END AS failed_rate
              FROM %(table)s s
             WHERE s.message_count != 0
            """,
            table=SQL.identifier(table),
            reached=SQL("(s.direction = 'outbound' AND s.state IN ('sent', 'delivered', 'read', 'played', 'failed'))"),
            local=SQL("(s.date AT TIME ZONE 'UTC' AT TIME ZONE %s)", account_tz_sql(SQL("s.account_id"))),
        )
