"""The inbox: what a conversation shows in the list (preview, unread, waiting, window, tags),
how it is searched (name, number, message text) and the inbox actions."""

import re
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.modules.db import FunctionStatus
from odoo.tools import SQL, sql

WINDOW_CLOSING = timedelta(hours=1)
# what a phone number is written with, beside its digits
NOT_A_NUMBER = re.compile(r"[\d\s+().-]")
PREVIEW_LENGTH = 120
WORD = re.compile(r"\w+")
# the words of the conversations' messages (see _whatsapp_words_init)
WORDS_TABLE = "crm_whatsapp_conversation_words"
# message types whose body is no text of the conversation
WORDLESS_TYPES = ("reaction", "system")


class CrmWhatsappConversation(models.Model):
    _inherit = "crm.whatsapp.conversation"

    # the inbox searches the customers' names (see _search_inbox)
    profile_name = fields.Char(index="trigram")
    tag_ids = fields.Many2many("crm.whatsapp.conversation.tag", string="Tags")
    unread_count = fields.Integer("Unread", readonly=True, help="Customer messages nobody opened yet.")
    last_message_preview = fields.Char("Last Message", readonly=True)
    waiting_since = fields.Datetime(
        readonly=True, index="btree_not_null", help="The customer's oldest message not answered yet."
    )
    window_state = fields.Selection(
        [("open", "Open"), ("closing", "Closing"), ("closed", "Closed")],
        "Window",
        compute="_compute_window_state",
        help="Closing: the 24-hour window ends within the hour.",
    )
    message_text = fields.Char(
        "Message Text", compute="_compute_search_fields", search="_search_message_text", help="Search in the messages."
    )
    inbox_search = fields.Char(
        "Customer, Number or Text",
        compute="_compute_search_fields",
        search="_search_inbox",
        help="The customer's name, their number in any formatting, or words of the messages.",
    )

    def init(self):
        super().init()
        # the inbox opens on the latest conversations first
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS crm_whatsapp_conversation_inbox_order_index"
            " ON crm_whatsapp_conversation (last_message_at DESC NULLS LAST, id DESC)"
        )
        self._whatsapp_words_init()
        registry = self.env.registry
        if registry.has_trigram:
            # the customers' names searched by some of their letters, as Odoo indexes a trigram field
            column = '"name"'
            if registry.has_unaccent == FunctionStatus.INDEXABLE:
                column = registry.unaccent(column)
            sql.create_index(
                self.env.cr, "res_partner_name_whatsapp_trigram_index", "res_partner", [f"{column} gin_trgm_ops"], "gin"
            )
            # a number searched by some of its digits
            self.env.cr.execute(
                "CREATE INDEX IF NOT EXISTS crm_whatsapp_conversation_wa_id_trigram_index"
                " ON crm_whatsapp_conversation USING gin (wa_id gin_trgm_ops)"
            )

    @api.depends("window_expires_at")
    def _compute_window_state(self):
        now = fields.Datetime.now()
        for conversation in self:
            expires = conversation.window_expires_at
            if not expires or expires <= now:
                conversation.window_state = "closed"
            elif expires - now <= WINDOW_CLOSING:
                conversation.window_state = "closing"
            else:
                conversation.window_state = "open"

    def _compute_search_fields(self):
        self.message_text = self.inbox_search = False

    def _search_message_text(self, operator, value):
        """Conversations whose messages hold every word of ``value`` (or a word starting with it)."""
        if operator not in ("ilike", "=ilike", "like", "=like") or not value:
            raise UserError(_("Search the message text with words."))
        words = self._whatsapp_words_query(value)
        return [("id", "in", words)] if words else [("id", "=", False)]

    @api.model
    def _whatsapp_words_query(self, value):
        """The ids of the conversations whose messages hold every word of ``value`` (or a word
        starting with it), from the GIN index of their words (see _whatsapp_index_words)."""
        words = WORD.findall(self.env.registry.unaccent_python(value).lower())
        if not words:
            return None
        return SQL(
            "(SELECT conversation_id FROM %s WHERE words @@ to_tsquery('simple', %s))",
            SQL.identifier(WORDS_TABLE),
            " & ".join(f"{word}:*" for word in words),
        )

    def _search_inbox(self, operator, value):
        """A number (any formatting) searches the numbers; words search names and messages."""
        if operator not in ("ilike", "=ilike", "like", "=like") or not value:
            raise UserError(_("Search the conversations with words or digits."))
        digits = "".join(filter(str.isdigit, value))
        if len(digits) >= 3 and not NOT_A_NUMBER.sub("", value):
            return [("wa_id", "like", digits)]
        # one set of ids from three indexes (the names' trigrams, the messages' words): an OR of
        # the three would read every conversation to test each
        unaccent = self.env.registry.unaccent
        pattern = unaccent(SQL("%s", value if operator.startswith("=") else f"%{value}%"))
        words = self._whatsapp_words_query(value) or SQL("(SELECT NULL::integer)")
        names = SQL(
            """(SELECT id FROM crm_whatsapp_conversation WHERE %(profile)s ILIKE %(pattern)s
                UNION SELECT c.id FROM crm_whatsapp_conversation c
                              JOIN res_partner p ON p.id = %(partner_id)s
                             WHERE %(partner)s ILIKE %(pattern)s
                UNION %(words)s)""",
            # the names as written in this transaction too
            profile=unaccent(SQL('"profile_name"', to_flush=self._fields["profile_name"])),
            partner_id=SQL("c.partner_id", to_flush=self._fields["partner_id"]),
            partner=unaccent(SQL("p.name", to_flush=self.env["res.partner"]._fields["name"])),
            pattern=pattern,
            words=words,
        )
        return [("id", "in", names)]

    # ------------------------------------------------------------
    # Upkeep, from the messages
    # ------------------------------------------------------------

    def _whatsapp_words_init(self):
        """The words of each conversation's messages, for the text search: a ``tsvector`` per
        conversation with its GIN index, in a table of their own (no ORM model: they are only
        searched) so that the conversations' rows stay small. Filled once from the messages."""
        cr = self.env.cr
        if sql.table_exists(cr, WORDS_TABLE):
            return
        cr.execute(
            SQL(
                """CREATE TABLE %s (
                       conversation_id integer PRIMARY KEY REFERENCES crm_whatsapp_conversation ON DELETE CASCADE,
                       words tsvector NOT NULL)""",
                SQL.identifier(WORDS_TABLE),
            )
        )
        cr.execute(
            SQL(
                "CREATE INDEX %s ON %s USING gin (words)",
                SQL.identifier(f"{WORDS_TABLE}_index"),
                SQL.identifier(WORDS_TABLE),
            )
        )
        if sql.table_exists(cr, "crm_whatsapp_message"):  # an upgrade: the messages are there
            self._whatsapp_words_rebuild()

    @api.model
    def _whatsapp_words_rebuild(self):
        """Index the words of every message again, in one query (messages stored in bulk)."""
        self.env.cr.execute(
            SQL(
                """INSERT INTO %(table)s (conversation_id, words)
                   SELECT conversation_id, strip(to_tsvector('simple', string_agg(%(body)s, ' ')))
                     FROM crm_whatsapp_message
                    WHERE conversation_id IS NOT NULL AND body IS NOT NULL AND message_type NOT IN %(wordless)s
                 GROUP BY conversation_id
              ON CONFLICT (conversation_id) DO UPDATE SET words = EXCLUDED.words""",
                table=SQL.identifier(WORDS_TABLE),
                body=self.env.registry.unaccent(SQL("lower(body)")),
                wordless=WORDLESS_TYPES,
            )
        )

    def _whatsapp_inbox_register(self, messages):
        """New messages of these conversations: preview, unread count, waiting since."""
        by_conversation = messages.grouped("conversation_id")
        for conversation in self:
            mine = by_conversation.get(conversation)
            if not mine:
                continue
            values = {}
            latest = mine.sorted(lambda m: (m.timestamp or fields.Datetime.now(), m.id))[-1]
            preview = latest._whatsapp_preview()
            if preview and (not conversation.last_message_at or latest.timestamp >= conversation.last_message_at):
                values["last_message_preview"] = preview[:PREVIEW_LENGTH]
            customer = mine.filtered(lambda m: m.direction == "inbound" and m.message_type not in ("system", "edit"))
            # a person's answer, not the system's (automatic replies leave the customer waiting)
            ours = mine.filtered(
                lambda m: (
                    m.direction == "outbound"
                    and m.author_id
                    and m.author_id._is_internal()
                    and not m.author_id._is_superuser()
                )
            )
            if customer:
                values["unread_count"] = conversation.unread_count + len(
                    customer.filtered(lambda m: m.message_type != "revoke")
                )
                if not conversation.waiting_since:
                    values["waiting_since"] = min(customer.mapped("timestamp"))
            if ours and not customer:
                # we answered: the customer no longer waits, and whoever answered has read the chat
                values.update(waiting_since=False, unread_count=0)
            if values:
                conversation.sudo().write(values)

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_assign_to_me(self):
        if not self.env.user._is_internal():
            raise UserError(_("Only users can take conversations."))
        self.filtered(lambda c: c.user_id != self.env.user)._whatsapp_assign(self.env.user)

    def action_unassign(self):
        self.filtered("user_id")._whatsapp_assign(self.env["res.users"])
