"""Message volume, counted when it happens: one row per hour and kind of message.

The messages report reads this table instead of grouping every message. A message is counted
when it is stored (outbound), or by the inbound hook once its chat is assigned (inbound); when its
status, error or send time changes, its count moves from its old row to its new one. Each change
is one insert per batch of messages, of new (``pending``) rows only, so that concurrent workers
never update the same row; a cron adds them up into one row per key every few minutes (the report
sums rows either way). ``_recount_query`` counts the same rows from the messages themselves:
``action_rebuild`` replaces the table with it.
"""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

# the columns that make a row, in the order of _key()
KEY_COLUMNS = (
    "date",
    "direction",
    "message_type",
    "state",
    "account_id",
    "company_id",
    "user_id",
    "team_id",
    "template_id",
    "error_code",
    "is_automatic",
)
# what a message of a row is made of: changing one of these moves the message to another row
MESSAGE_KEY_FIELDS = (
    "timestamp",
    "direction",
    "message_type",
    "state",
    "account_id",
    "report_user_id",
    "report_team_id",
    "template_id",
    "error_code",
    "is_automatic",
)


def create_key_index(cr, table):
    """One compacted row per key (an empty agent, team or template is a key too); new rows are
    pending until the compaction adds them to it."""
    cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(f"{table}_key_unique")))
    cr.execute(
        SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (%s) NULLS NOT DISTINCT WHERE NOT pending",
            SQL.identifier(f"{table}_key_compacted"),
            SQL.identifier(table),
            SQL(", ").join(SQL.identifier(column) for column in KEY_COLUMNS),
        )
    )


def compact_sql(table):
    """Add a table's pending rows up into its compacted rows, in one statement."""
    columns = SQL(", ").join(SQL.identifier(column) for column in (*KEY_COLUMNS, "message_count"))
    keys = SQL(", ").join(SQL.identifier(column) for column in KEY_COLUMNS)
    return SQL(
        """WITH added AS (DELETE FROM %(table)s WHERE pending RETURNING %(columns)s)
           INSERT INTO %(table)s AS stat (%(columns)s, pending)
           SELECT %(keys)s, SUM(message_count), FALSE FROM added GROUP BY %(keys)s
           ON CONFLICT (%(keys)s) WHERE NOT pending
           DO UPDATE SET message_count = stat.message_count + EXCLUDED.message_count""",
        table=SQL.identifier(table),
        columns=columns,
        keys=keys,
    )


def account_tz_sql(account_id):
    """The time zone of an account's working hours (its team's, else its company's; else UTC)."""
    return SQL(
        """COALESCE((SELECT rc.tz
                       FROM crm_whatsapp_account a
                  LEFT JOIN crm_team t ON t.id = a.team_id
                  LEFT JOIN res_company co ON co.id = a.company_id
                       JOIN resource_calendar rc
                         ON rc.id = COALESCE(t.whatsapp_resource_calendar_id, co.resource_calendar_id)
                      WHERE a.id = %s), 'UTC')""",
        account_id,
    )


def local_day_sql(date, account_id):
    """Midnight (in UTC) of the day of ``date`` (UTC) in the time zone of the account's working hours."""
    tz = account_tz_sql(account_id)
    return SQL(
        "(date_trunc('day', %s AT TIME ZONE 'UTC' AT TIME ZONE %s) AT TIME ZONE %s) AT TIME ZONE 'UTC'", date, tz, tz
    )


class CrmWhatsappMessageStat(models.Model):
    _name = "crm.whatsapp.message.stat"
    _description = "WhatsApp Message Count"
    _inherit = ["crm.whatsapp.message.count"]
    _order = "date desc, id desc"

    date = fields.Datetime("Hour", required=True, readonly=True, help="The hour of the message (UTC).")

    def init(self):
        create_key_index(self.env.cr, self._table)

    # ------------------------------------------------------------
    # Counting
    # ------------------------------------------------------------

    @api.model
    def _key(self, message):
        """The row of ``message`` as it is now (read from the cache: no query once it is loaded)."""
        return (
            message.timestamp.replace(minute=0, second=0, microsecond=0) if message.timestamp else None,
            message.direction,
            message.message_type,
            message.state,
            message.account_id.id,
            message.account_id.company_id.id or None,
            message.report_user_id.id or None,
            message.report_team_id.id or None,
            message.template_id.id or None,
            message.error_code or 0,
            bool(message.is_automatic),
        )

    @api.model
    def _add(self, deltas):
        """Add ``{key: count}`` (a count may be negative) to the hourly and daily counts, in one query."""
        rows = [(*key, count) for key, count in deltas.items() if count and key[0]]
        if not rows:
            return
        casts = ("timestamp", "varchar", "varchar", "varchar", *["int4"] * 6, "bool", "int4")
        values = SQL(", ").join(
            SQL("(%s)", SQL(", ").join(SQL(f"%s::{cast}", value) for value, cast in zip(row, casts, strict=True)))
            for row in rows
        )
        columns = SQL(", ").join(SQL.identifier(column) for column in (*KEY_COLUMNS, "message_count"))
        others = SQL(", ").join(SQL.identifier("delta", column) for column in KEY_COLUMNS[1:])
        # new rows only, never an update: concurrent workers counting the same hour and kind do
        # not wait for (or fail on) each other; the compaction cron adds the new rows up
        self.env.cr.execute(
            SQL(
                """WITH delta (%(columns)s) AS (VALUES %(values)s),
                        hourly AS (INSERT INTO %(hourly)s (%(columns)s, pending) SELECT *, TRUE FROM delta)
                   INSERT INTO %(daily)s (%(columns)s, pending)
                   SELECT %(day)s, %(others)s, SUM(delta.message_count), TRUE FROM delta
                 GROUP BY 1, %(others)s""",
                columns=columns,
                values=values,
                hourly=SQL.identifier(self._table),
                daily=SQL.identifier(self.env["crm.whatsapp.message.stat.daily"]._table),
                others=others,
                day=local_day_sql(SQL.identifier("delta", "date"), SQL.identifier("delta", "account_id")),
            )
        )
        self.invalidate_model(["message_count"])
        self.env["crm.whatsapp.message.stat.daily"].invalidate_model(["message_count"])

    @api.model
    def _count(self, messages, sign=1):
        """Count ``messages`` in their rows (``sign`` -1: take them out)."""
        deltas = {}
        for message in messages:
            key = self._key(message)
            deltas[key] = deltas.get(key, 0) + sign
        self._add(deltas)

    @api.model
    def _cron_compact(self):
        """Add the counts of the last minutes up: one row per hour (and day) and kind again."""
        Daily = self.env["crm.whatsapp.message.stat.daily"]
        self.env.flush_all()
        self.env.cr.execute(compact_sql(self._table))
        self.env.cr.execute(compact_sql(Daily._table))
        self.env.cr.execute(SQL("DELETE FROM %s WHERE message_count = 0", SQL.identifier(self._table)))
        self.env.cr.execute(SQL("DELETE FROM %s WHERE message_count = 0", SQL.identifier(Daily._table)))
        self.invalidate_model()
        Daily.invalidate_model()

    # ------------------------------------------------------------
    # Recount
    # ------------------------------------------------------------

    @api.model
    def _recount_query(self):
        """The rows counted from the stored messages: what the table holds when every change was counted."""
        return SQL(
            """SELECT date_trunc('hour', m.timestamp) AS date, m.direction, m.message_type, m.state, m.account_id,
                      a.company_id, m.report_user_id AS user_id, m.report_team_id AS team_id, m.template_id,
                      COALESCE(m.error_code, 0) AS error_code, COALESCE(m.is_automatic, FALSE) AS is_automatic,
                      COUNT(*) AS message_count
                 FROM crm_whatsapp_message m
                 JOIN crm_whatsapp_account a ON a.id = m.account_id
                WHERE m.timestamp IS NOT NULL
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"""
        )

    def action_rebuild(self):
        """Count every stored message again (after an import or a repair done in SQL)."""
        if not self.env.is_system():
            raise AccessError(_("Only an administrator recounts the WhatsApp message figures."))
        self._rebuild()
        return True

    @api.model
    def _rebuild(self):
        self.env.flush_all()
        self.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(self._table)))
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s, pending) SELECT *, FALSE FROM (%s) recount",
                SQL.identifier(self._table),
                SQL(", ").join(SQL.identifier(column) for column in (*KEY_COLUMNS, "message_count")),
                self._recount_query(),
            )
        )
        Daily = self.env["crm.whatsapp.message.stat.daily"]
        columns = SQL(", ").join(SQL.identifier(column) for column in (*KEY_COLUMNS, "message_count"))
        others = SQL(", ").join(SQL.identifier(column) for column in KEY_COLUMNS[1:])
        self.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(Daily._table)))
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s, pending) SELECT %s, %s, SUM(message_count), FALSE FROM %s GROUP BY 1, %s",
                SQL.identifier(Daily._table),
                columns,
                local_day_sql(SQL.identifier("date"), SQL.identifier("account_id")),
                others,
                SQL.identifier(self._table),
                others,
            )
        )
        self.env.cr.execute(SQL("ANALYZE %s", SQL.identifier(self._table)))
        self.env.cr.execute(SQL("ANALYZE %s", SQL.identifier(Daily._table)))
        self.invalidate_model()
        Daily.invalidate_model()
