"""The indexes a million messages and a hundred thousand conversations need: each one is used."""

from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from ..models.crm_whatsapp_webhook_event import MAX_ATTEMPTS


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookIndexes(TransactionCase):
    def plan(self, query, *params):
        """The plan of a query when the planner may not read the whole table nor sort it."""
        cr = self.env.cr
        for setting in ("enable_seqscan", "enable_sort"):
            cr.execute(f"SET LOCAL {setting} = off")
        cr.execute(SQL("EXPLAIN %s", query if isinstance(query, SQL) else SQL(query, *params)))
        plan = "\n".join(row[0] for row in cr.fetchall())
        for setting in ("enable_seqscan", "enable_sort"):
            cr.execute(f"SET LOCAL {setting} = on")
        return plan

    def orm_plan(self, model, domain, order=None, limit=None):
        return self.plan(self.env[model]._search(domain, order=order, limit=limit).select())

    def assertUses(self, index, plan):
        self.assertIn(index, plan)

    def test_self_references_deleting_a_message_reads_no_table(self):
        # ON DELETE SET NULL looks up the messages pointing to the deleted one
        for column in ("reply_to_id", "reaction_to_id"):
            self.assertUses(
                f"crm_whatsapp_message__{column}_index",
                self.plan(f"SELECT 1 FROM crm_whatsapp_message WHERE {column} = %s", 42),
            )

    def test_company_of_every_record_rule(self):
        for model in ("crm.whatsapp.message", "crm.whatsapp.conversation"):
            table = self.env[model]._table
            self.assertUses(f"{table}__company_id_index", self.orm_plan(model, [("company_id", "in", [1, 2])]))

    def test_author_of_per_agent_reports(self):
        self.assertUses(
            "crm_whatsapp_message__author_id_index", self.orm_plan("crm.whatsapp.message", [("author_id", "=", 2)])
        )

    def test_inbox_default_order_and_filters(self):
        Conversation = self.env["crm.whatsapp.conversation"]
        self.assertUses(
            "crm_whatsapp_conversation_inbox_index",
            self.orm_plan(Conversation._name, [], order=Conversation._order, limit=80),
        )
        for field, value in (("state", "open"), ("user_id", 2), ("team_id", 1)):
            self.assertUses(
                f"crm_whatsapp_conversation__{field}_index", self.orm_plan(Conversation._name, [(field, "=", value)])
            )

    def test_message_text_searched_with_trigrams(self):
        self.assertUses(
            "crm_whatsapp_message__body_index",
            self.orm_plan("crm.whatsapp.message", [("body", "ilike", "orçamento")]),
        )

    def test_message_lookup_of_each_inbound_message(self):
        """Stored already? what it names, and what waits for it: one query, read through an index,
        and the index of the messages waiting for their target holds only those."""
        account = self.env["crm.whatsapp.account"].search([], limit=1)
        domain = self.env["crm.whatsapp.message"]._receive_lookup_domain(account, "wamid.X", {"wamid.Y"})
        self.env.cr.execute("DROP INDEX crm_whatsapp_message__account_id_index")  # rolled back
        # the account's history, known to the planner: reading it all is not an option (rolled back)
        self.env.cr.execute(
            """INSERT INTO crm_whatsapp_message (account_id, direction, message_type, state, media_state, wamid)
               SELECT %s, 'inbound', 'text', 'received', 'none', 'wamid.H' || n FROM generate_series(1, 20000) n""",
            [account.id],
        )
        self.env.cr.execute("ANALYZE crm_whatsapp_message")
        plan = self.orm_plan("crm.whatsapp.message", domain)
        self.assertNotIn("Seq Scan", plan)
        self.assertUses("crm_whatsapp_message_waiting_reply_index", plan)
        self.assertUses("crm_whatsapp_message_wamid_account_unique", plan)
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'crm_whatsapp_message_waiting_reply_index'"
        )
        definition = self.env.cr.fetchone()[0]
        self.assertIn("(account_id, reply_to_wamid)", definition)
        self.assertIn("reply_to_id IS NULL", definition)

    def test_waiting_answers_of_our_message(self):
        """When our message learns its wamid, the answers waiting for it are read from the partial index."""
        domain = [
            ("account_id", "=", 1),
            ("reply_to_wamid", "=", "wamid.X"),
            ("reply_to_id", "=", False),
            ("reaction_to_id", "=", False),
        ]
        self.assertUses("crm_whatsapp_message_waiting_reply_index", self.orm_plan("crm.whatsapp.message", domain))

    def test_lane_backlog(self):
        query = SQL(
            """SELECT id FROM crm_whatsapp_webhook_event
                WHERE state IN ('pending', 'failed') AND attempts < %s AND lane = %s
                ORDER BY lane, id LIMIT 50 FOR UPDATE SKIP LOCKED""",
            MAX_ATTEMPTS,
            1,
        )
        self.assertUses("crm_whatsapp_webhook_event_backlog_index", self.plan(query))

    def test_no_redundant_indexes(self):
        """(account_id, wamid) is unique: its index serves every lookup by wamid; the payload hash too."""
        self.env.cr.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname IN %s",
            [("crm_whatsapp_message__wamid_index", "crm_whatsapp_webhook_event__payload_hash_index")],
        )
        self.assertEqual(self.env.cr.fetchall(), [])
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'crm_whatsapp_message_wamid_account_unique'"
        )
        self.assertIn("(account_id, wamid)", self.env.cr.fetchone()[0])
