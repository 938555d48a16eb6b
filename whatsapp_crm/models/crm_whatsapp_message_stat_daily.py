from odoo import fields, models
from odoo.tools import SQL

from .crm_whatsapp_message_stat import create_key_index


class CrmWhatsappMessageStatDaily(models.Model):
    """The hourly message counts added up per day of the account's working hours' time zone.

    Kept by the same inserts as ``crm.whatsapp.message.stat``: the messages report reads these
    (about ten times fewer rows) unless it groups or filters by hour or day of week.
    """

    _name = "crm.whatsapp.message.stat.daily"
    _description = "WhatsApp Daily Message Count"
    _inherit = ["crm.whatsapp.message.count"]
    _order = "date desc, id desc"

    date = fields.Datetime("Day", required=True, readonly=True, help="Midnight of the account's time zone (in UTC).")

    def init(self):
        create_key_index(self.env.cr, self._table)
        # messages stored before the counts were kept (an update of the module): counted once
        self.env.cr.execute(
            SQL(
                "SELECT NOT EXISTS (SELECT 1 FROM %s) AND EXISTS (SELECT 1 FROM crm_whatsapp_message)",
                SQL.identifier(self._table),
            )
        )
        if self.env.cr.fetchone()[0]:
            self.env.cr.execute(
                """UPDATE crm_whatsapp_message m
                      SET report_user_id = COALESCE(m.author_id, c.user_id), report_team_id = c.team_id
                     FROM crm_whatsapp_conversation c
                    WHERE c.id = m.conversation_id AND m.report_user_id IS NULL AND m.report_team_id IS NULL"""
            )
            self.env["crm.whatsapp.message.stat"]._rebuild()
