from odoo.tests import tagged

from .reporting_common import ReportingCase


@tagged("post_install", "-at_install")
class TestReportingSessions(ReportingCase):
    """Session facts of scripted conversations (2026-01-09 is a Friday)."""

    def test_first_response_over_weekend_wall_clock_and_business_hours(self):
        self.customer_says("2026-01-09 16:30", "Do you deliver on Saturdays?")
        session = self.sessions()
        self.assertEqual(len(session), 1)
        self.assertEqual(session.state, "open")
        self.assertEqual(str(session.first_inbound_at), "2026-01-09 16:30:00")
        self.assertEqual((session.opened_weekday, session.opened_hour), ("4", "16"))
        self.assertEqual(session.team_id, self.team)
        self.assertEqual(session.user_id, self.user_salesman)
        self.assertEqual(session.sla_status, "pending")
        self.assertEqual(str(session.waiting_since), "2026-01-09 16:30:00")
        self.customer_says("2026-01-11 12:00", "Hello? I'd need it by Tuesday.")  # keeps the window open
        self.assertEqual(self.sessions(), session, "the same request")
        self.assertEqual(str(session.waiting_since), "2026-01-09 16:30:00", "waiting since the first message")

        self.agent_replies("2026-01-12 09:45", user=self.user_salesman)
        # wall clock: 2 days 17 h 15 min; business: Friday 16:30-17:00 and Monday 9:00-9:45
        self.assertAlmostEqual(session.first_response_minutes, 3915, places=4)
        self.assertAlmostEqual(session.first_response_business_minutes, 75, places=4)
        self.assertEqual(str(session.first_response_at), "2026-01-12 09:45:00")
        self.assertEqual(session.first_response_user_id, self.user_salesman)
        self.assertEqual(session.sla_status, "missed", "75 business minutes exceed the 60-minute target")
        self.assertFalse(session.waiting_since)
        self.assertEqual((session.inbound_count, session.outbound_count), (2, 1))

    def test_bot_replies_do_not_count_as_response(self):
        self.customer_says("2026-01-12 10:00", "Hello")
        self.agent_replies("2026-01-12 10:00", "Thanks, an agent will answer soon.", automatic=True)
        session = self.sessions()
        self.assertFalse(session.first_response_at, "an automatic reply is no response")
        self.assertEqual(session.sla_status, "pending")
        self.assertEqual(str(session.waiting_since), "2026-01-12 10:00:00", "the customer still waits")
        self.assertEqual((session.outbound_count, session.automatic_count), (1, 1))

        self.customer_says("2026-01-12 10:05", "Anyone?")
        self.agent_replies("2026-01-12 10:40", "Sorry for the wait!")
        self.assertAlmostEqual(session.first_response_minutes, 40, places=4)
        self.assertAlmostEqual(session.first_response_business_minutes, 40, places=4)
        self.assertEqual(session.sla_status, "met")
        self.assertEqual((session.inbound_count, session.outbound_count, session.automatic_count), (2, 2, 1))

    def test_resolution_time_and_reopen_after_close(self):
        self.customer_says("2026-01-09 16:30", "Question")
        self.agent_replies("2026-01-09 16:50", "Answer")
        self.at("2026-01-12 11:00")
        self.conversation().action_close()
        first = self.sessions()
        self.assertEqual(first.state, "closed")
        self.assertEqual(first.close_reason, "closed")
        # Friday 16:30 to Monday 11:00: 66.5 h; in office hours 0.5 h + 2 h
        self.assertAlmostEqual(first.resolution_hours, 66.5, places=4)
        self.assertAlmostEqual(first.resolution_business_hours, 2.5, places=4)

        self.customer_says("2026-01-12 12:00", "One more thing")
        second = self.sessions() - first
        self.assertEqual(len(second), 1, "a customer message after the close opens a new session")
        self.assertEqual(self.conversation().state, "open")
        self.assertEqual(second.state, "open")
        self.assertEqual(str(second.first_inbound_at), "2026-01-12 12:00:00")
        self.agent_replies("2026-01-12 12:10")
        self.assertAlmostEqual(second.first_response_minutes, 10, places=4)
        self.assertEqual(second.sla_status, "met")
        self.assertEqual((second.inbound_count, second.outbound_count), (1, 1))
        self.assertEqual((first.inbound_count, first.outbound_count), (1, 1), "the closed session is left as it was")
        self.assertEqual(str(first.first_response_at), "2026-01-09 16:50:00")

    def test_idle_session_closed_by_cron_resolved_at_last_message(self):
        self.customer_says("2026-01-12 09:00", "Hi")
        self.agent_replies("2026-01-12 09:30", "Hello!")
        self.at("2026-01-12 20:00")
        self.Session._cron_close_idle()
        session = self.sessions()
        self.assertEqual(session.state, "open", "not idle for 12 hours yet")
        self.at("2026-01-12 21:31")
        self.Session._cron_close_idle()
        self.assertEqual((session.state, session.close_reason), ("closed", "idle"))
        self.assertAlmostEqual(session.resolution_hours, 0.5, places=4)
        self.assertEqual(self.conversation().state, "pending", "the conversation itself is left as it is")

    def test_unanswered_session_misses_target_when_closed(self):
        self.customer_says("2026-01-12 09:00", "Hi")
        self.at("2026-01-12 09:20")
        self.conversation().action_close()
        session = self.sessions()
        self.assertEqual(session.sla_status, "missed")
        self.assertFalse(session.first_response_at)

    def test_session_follows_assignment_lead_and_outcome(self):
        self.customer_says("2026-01-12 09:00", "I want a quote")
        session = self.sessions()
        lead = self.conversation().lead_id
        self.assertTrue(lead, "the account creates leads")
        self.assertEqual(session.lead_id, lead)
        self.assertTrue(session.lead_created)
        self.assertEqual(session.source_id, self.env.ref("whatsapp_crm.utm_source_whatsapp"))
        self.assertEqual(session.lead_outcome, "open")

        other = self.user_manager
        self.conversation().user_id = other
        self.assertEqual(session.user_id, other)

        lead.write({"expected_revenue": 1200})
        lead.action_set_won()
        self.assertEqual(session.lead_outcome, "won")
        self.assertEqual(session.lead_won_revenue, 1200)

    def test_click_to_whatsapp_ad_recorded(self):
        referral = {
            "source_url": "https://fb.me/ad",
            "source_id": "120210000000001",
            "source_type": "ad",
            "headline": "Winter sale",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
        }
        self.customer_says("2026-01-12 09:00", "I saw your ad", referral=referral)
        session = self.sessions()
        self.assertEqual(session.ad_id, "120210000000001")
        self.assertEqual(session.ctwa_clid, "ARAkLkA8rmlFeiCktEJQ")
        self.assertEqual(session.medium_id, self.env.ref("whatsapp_crm.utm_medium_whatsapp_ad"))
        self.assertEqual(session.campaign_id.name, "Winter sale")

    def test_reactions_and_system_messages_open_no_session(self):
        self.customer_says("2026-01-12 09:00", kind="reaction", content={"message_id": "wamid.X", "emoji": "👍"})
        self.assertFalse(self.sessions())
