from odoo.tests import tagged

from .reporting_common import ReportingCase


@tagged("post_install", "-at_install")
class TestReportingCsat(ReportingCase):
    """The satisfaction survey: asked once when a session closes, answered with reply buttons."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.csat_enabled = True

    def answered_session(self):
        self.customer_says("2026-01-12 09:00", "Is it in stock?")
        self.agent_replies("2026-01-12 09:10", "Yes, it is.")
        return self.sessions()

    def close(self, when):
        self.at(when)
        with self.mock_whatsapp_api():
            self.conversation().action_close()
            self.env["crm.whatsapp.message"]._process_queue()
        return self.sent_payloads()

    def flush_queue(self):
        with self.mock_whatsapp_api():
            self.env["crm.whatsapp.message"]._process_queue()
        return self.sent_payloads()

    def test_rating_from_reply_button_then_comment_asked_once(self):
        session = self.answered_session()
        payloads = self.close("2026-01-12 09:30")
        self.assertEqual(len(payloads), 1, "the survey is sent when the session closes")
        interactive = payloads[0]["interactive"]
        self.assertEqual(payloads[0]["type"], "interactive")
        self.assertEqual(interactive["body"]["text"], "Kako ste zadovoljni našim razgovorom?", "Croatian by default")
        self.assertEqual(
            [button["reply"] for button in interactive["action"]["buttons"]],
            [
                {"id": "button_1", "title": "Odlično"},
                {"id": "button_2", "title": "U redu"},
                {"id": "button_3", "title": "Loše"},
            ],
        )
        self.assertEqual(session.csat_state, "asked")
        survey = session.csat_message_id
        self.assertTrue(survey.is_automatic)
        self.assertEqual(session.outbound_count, 1, "the survey is not counted in the closed session")

        self.tap("2026-01-12 09:40", survey, 1, "Odlično")
        self.assertEqual(session.csat_state, "comment")
        self.assertEqual(session.csat_rating, 5)
        self.assertEqual(session.rating_last_value, 5, "stored as an Odoo rating")
        rating = session.rating_ids
        self.assertEqual((len(rating), rating.consumed, rating.rating), (1, True, 5))
        self.assertEqual(rating.rated_partner_id, self.user_salesman.partner_id)
        self.assertEqual(self.conversation().state, "closed", "an answer to the survey does not reopen the chat")
        self.assertEqual(len(self.sessions()), 1, "nor opens a session")
        comment_request = self.flush_queue()
        self.assertEqual([p["text"]["body"] for p in comment_request], [self.account.csat_comment_question])

        self.customer_says("2026-01-12 09:42", "Brzo i ljubazno, hvala!")
        self.assertEqual(session.csat_state, "done")
        self.assertEqual(session.csat_comment, "Brzo i ljubazno, hvala!")
        self.assertEqual(rating.feedback, "Brzo i ljubazno, hvala!")
        self.assertEqual(len(self.sessions()), 1)
        self.assertEqual(session.inbound_count, 3, "the answers belong to the session")

        # a second tap, closing the conversation again: nothing more is asked or changed
        self.tap("2026-01-12 09:50", survey, 3, "Loše")
        self.at("2026-01-12 09:55")
        self.conversation().action_reopen()
        self.assertEqual(self.close("2026-01-12 09:56"), [], "asked once only")
        self.assertEqual(session.csat_rating, 5)
        self.assertEqual(rating.rating, 5)

    def test_ignored_survey_not_asked_again_and_next_message_opens_a_session(self):
        session = self.answered_session()
        self.close("2026-01-12 09:30")
        self.customer_says("2026-01-13 08:00", "I have another question")
        second = self.sessions() - session
        self.assertEqual(len(second), 1, "a message that is no answer opens a new session")
        self.assertEqual(session.csat_state, "asked")
        self.assertEqual(self.close("2026-01-13 08:01"), [], "an unanswered new session is not surveyed")
        self.assertEqual(second.csat_state, "none")

    def test_button_of_another_conversation_is_ignored(self):
        session = self.answered_session()
        self.close("2026-01-12 09:30")
        stranger = "385911234567"
        self.tap("2026-01-12 09:40", session.csat_message_id, 3, "Loše", wa_id=stranger)
        self.assertEqual(session.csat_state, "asked")
        self.assertFalse(session.rating_ids.filtered("consumed"))
        self.assertEqual(len(self.sessions(stranger)), 1, "the stranger's message is a message like any other")

    def test_outside_window_skipped_without_template(self):
        session = self.answered_session()
        self.assertEqual(self.close("2026-01-13 09:30"), [], "never free text outside the window")
        self.assertEqual(session.csat_state, "skipped")
        self.assertFalse(session.csat_message_id)

    def test_outside_window_approved_template(self):
        template = self.env["crm.whatsapp.template"].create(
            {
                "name": "chat_rating",
                "language": "hr",
                "account_id": self.account.id,
                "status": "approved",
                "body": "Kako ste zadovoljni našim razgovorom?",
            }
        )
        self.account.csat_template_id = template
        session = self.answered_session()
        payloads = self.close("2026-01-13 09:30")
        self.assertEqual([p["type"] for p in payloads], ["template"])
        self.assertEqual(payloads[0]["template"]["name"], "chat_rating")
        self.assertEqual(session.csat_state, "asked")
        # the template's quick-reply button, titled like the answer
        self.customer_says("2026-01-13 10:00", kind="button", content={"text": "U redu", "payload": "U redu"})
        self.assertEqual((session.csat_state, session.csat_rating), ("comment", 3))

    def test_opted_out_customer_not_asked(self):
        session = self.answered_session()
        self.env["phone.blacklist"].sudo()._add(["+5511987654321"])
        self.assertEqual(self.close("2026-01-12 09:30"), [])
        self.assertEqual(session.csat_state, "skipped")

    def test_wording_per_account_and_language(self):
        self.env["res.lang"]._activate_lang("hr_HR")
        self.account.with_context(lang="hr_HR").csat_question = "Jeste li zadovoljni?"
        self.account.with_context(lang="en_US").write({"csat_question": "How did we do?", "csat_label_good": "Great"})
        session = self.answered_session()
        session.partner_id.lang = "en_US"
        payloads = self.close("2026-01-12 09:30")
        self.assertEqual(payloads[0]["interactive"]["body"]["text"], "How did we do?", "in the customer's language")
        self.assertEqual(payloads[0]["interactive"]["action"]["buttons"][0]["reply"]["title"], "Great")
        self.assertEqual(self.account.with_context(lang="hr_HR").csat_question, "Jeste li zadovoljni?")
