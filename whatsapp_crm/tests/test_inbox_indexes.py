"""The inbox's indexes on a hundred thousand conversations: each one is used."""

from odoo.tests import TransactionCase, tagged

from .test_webhook_indexes import TestWebhookIndexes


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxIndexes(TransactionCase):
    plan = TestWebhookIndexes.plan
    orm_plan = TestWebhookIndexes.orm_plan
    assertUses = TestWebhookIndexes.assertUses

    def test_message_text_searched_in_the_words_of_conversations(self):
        for field in ("message_text", "inbox_search"):
            self.assertUses(
                "crm_whatsapp_conversation_words_index",
                self.orm_plan("crm.whatsapp.conversation", [(field, "ilike", "warranty")]),
            )
