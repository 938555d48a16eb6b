import base64
import json

from odoo.tests import new_test_user, tagged

from .reporting_common import ReportingCase

ANNA, BORIS, CARLA = "385911000001", "385911000002", "385911000003"


@tagged("post_install", "-at_install")
class TestReportingReports(ReportingCase):
    """Each report's read_group returns its measures; salespeople see their own rows only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_salesman2 = new_test_user(
            cls.env, login="wa_salesman2", groups="sales_team.group_sale_salesman", name="Sam Second"
        )
        cls.account.csat_enabled = True

    def setUp(self):
        super().setUp()
        # Anna: Friday evening, answered on Monday (75 business minutes: target missed), closed, rated good
        self.customer_says("2026-01-09 16:30", "Price?", wa_id=ANNA)
        self.customer_says("2026-01-11 12:00", "Hello?", wa_id=ANNA)
        self.reply_anna = self.agent_replies("2026-01-12 09:45", conversation=self.conversation(ANNA))
        self.at("2026-01-12 11:00")
        with self.mock_whatsapp_api():
            self.conversation(ANNA).action_close()
            self.env["crm.whatsapp.message"]._process_queue()
        self.anna = self.sessions(ANNA)
        self.tap("2026-01-12 11:05", self.anna.csat_message_id, 1, "Odlično", wa_id=ANNA)
        with self.mock_whatsapp_api():
            self.env["crm.whatsapp.message"]._process_queue()  # the comment request
        self.customer_says("2026-01-12 11:06", "Super!", wa_id=ANNA)
        self.anna.lead_id.write({"expected_revenue": 1000})
        self.anna.lead_id.action_set_won()
        # Boris: answered in 10 minutes, then waits since 10:00
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=BORIS)
        self.reply_boris = self.agent_replies("2026-01-12 09:10", conversation=self.conversation(BORIS))
        self.customer_says("2026-01-12 10:00", "And the colour?", wa_id=BORIS)
        # Carla: Sam's customer, answered in 30 minutes, her lead lost
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=CARLA)
        self.conversation(CARLA).user_id = self.user_salesman2
        self.reply_carla = self.agent_replies(
            "2026-01-12 09:30", user=self.user_salesman2, conversation=self.conversation(CARLA)
        )
        self.sessions(CARLA).lead_id.action_set_lost()
        self.at("2026-01-12 12:00")

    def read_group(self, model, measures, groupby, user=None):
        Report = self.env[model].with_user(user or self.user_manager)
        return Report.read_group([("account_id", "=", self.account.id)], measures, groupby, lazy=False)

    def test_conversations_report_measures(self):
        measures = [
            "first_response_minutes",
            "first_response_median",
            "first_response_business_minutes",
            "first_response_business_median",
            "sla_rate",
            "resolution_hours",
            "resolution_business_hours",
            "open_count",
            "unanswered_count",
            "waiting_hours",
            "lead_count",
            "csat_rating",
        ]
        [total] = self.read_group("crm.whatsapp.report.conversation", measures, [])
        self.assertEqual(total["__count"], 3)
        # wall clock 3915, 10 and 30 minutes; business 75, 10, 30
        self.assertAlmostEqual(total["first_response_minutes"], (3915 + 10 + 30) / 3, places=4)
        self.assertAlmostEqual(total["first_response_median"], 30, places=4)
        self.assertAlmostEqual(total["first_response_business_minutes"], (75 + 10 + 30) / 3, places=4)
        self.assertAlmostEqual(total["first_response_business_median"], 30, places=4)
        self.assertAlmostEqual(total["sla_rate"], 200 / 3, places=4)
        self.assertAlmostEqual(total["resolution_hours"], 66.5, places=4)
        self.assertAlmostEqual(total["resolution_business_hours"], 2.5, places=4)
        self.assertEqual(total["open_count"], 2)
        self.assertEqual(total["unanswered_count"], 0)
        self.assertEqual(total["lead_count"], 3)
        self.assertEqual(total["csat_rating"], 5)
        # the longest wait is Boris's, since 10:00, up to the database's clock
        self.env.cr.execute("SELECT EXTRACT(EPOCH FROM (NOW() AT TIME ZONE 'UTC') - '2026-01-12 10:00'::timestamp)")
        self.assertAlmostEqual(total["waiting_hours"], self.env.cr.fetchone()[0] / 3600, places=2)

        by_agent = {
            row["user_id"][0]: row for row in self.read_group("crm.whatsapp.report.conversation", measures, ["user_id"])
        }
        self.assertEqual(by_agent[self.user_salesman.id]["__count"], 2)
        self.assertAlmostEqual(by_agent[self.user_salesman2.id]["first_response_median"], 30, places=4)
        by_hour = self.read_group("crm.whatsapp.report.conversation", ["sla_rate"], ["weekday", "hour"])
        self.assertEqual(
            sorted((row["weekday"], row["hour"], row["__count"]) for row in by_hour), [("0", "09", 2), ("4", "16", 1)]
        )
        by_month = self.read_group("crm.whatsapp.report.conversation", ["first_response_median"], ["date:month"])
        self.assertEqual([row["__count"] for row in by_month], [3])

    def test_messages_report_volume_and_rates(self):
        self.reply_boris.write({"state": "delivered"})
        self.reply_carla.write({"state": "read"})
        self.reply_anna.write({"state": "failed", "error_code": 131026})
        rows = self.read_group(
            "crm.whatsapp.report.message",
            ["inbound_count", "outbound_count", "delivered_rate", "read_rate", "failed_rate"],
            ["direction"],
        )
        by_direction = {row["direction"]: row for row in rows}
        # inbound: Anna 2 + rating + comment, Boris 2, Carla 1; outbound: 3 replies, survey, comment request
        self.assertEqual(by_direction["inbound"]["__count"], 7)
        self.assertEqual(by_direction["inbound"]["inbound_count"], 7)
        self.assertFalse(by_direction["inbound"]["delivered_rate"], "no rate of what we received")
        outbound = by_direction["outbound"]
        self.assertEqual(outbound["outbound_count"], 5)
        # delivered: Boris's and Carla's replies (read implies delivered) of 5 accepted or failed
        self.assertAlmostEqual(outbound["delivered_rate"], 40, places=4)
        self.assertAlmostEqual(outbound["read_rate"], 20, places=4)
        self.assertAlmostEqual(outbound["failed_rate"], 20, places=4)

        by_error = {
            row["error_code"]: row["failed_rate"]
            for row in self.read_group("crm.whatsapp.report.message", ["failed_rate"], ["error_code"])
        }
        self.assertEqual(by_error["131026"], 100)
        by_day = self.read_group("crm.whatsapp.report.message", ["outbound_count"], ["date:day", "account_id"])
        self.assertEqual(sum(row["__count"] for row in by_day), 12)
        by_agent = {
            row["user_id"] and row["user_id"][0]: row["outbound_count"]
            for row in self.read_group("crm.whatsapp.report.message", ["outbound_count"], ["user_id"])
        }
        self.assertEqual(by_agent[self.user_salesman2.id], 1)
        automatic = self.read_group("crm.whatsapp.report.message", ["outbound_count"], ["is_automatic"])
        self.assertEqual({row["is_automatic"]: row["outbound_count"] for row in automatic}, {True: 2, False: 5 - 2})

    def test_pipeline_report_conversion_and_revenue(self):
        measures = ["lead_count", "won_count", "lost_count", "conversion_rate", "won_revenue"]
        [total] = self.read_group("crm.whatsapp.report.pipeline", measures, ["source_id"])
        self.assertEqual(total["source_id"][0], self.env.ref("whatsapp_crm.utm_source_whatsapp").id)
        self.assertEqual((total["lead_count"], total["won_count"], total["lost_count"]), (3, 1, 1))
        self.assertAlmostEqual(total["conversion_rate"], 100 / 3, places=4)
        self.assertEqual(total["won_revenue"], 1000)
        outcomes = self.read_group("crm.whatsapp.report.pipeline", ["lead_count"], ["outcome"])
        self.assertEqual({row["outcome"]: row["lead_count"] for row in outcomes}, {"won": 1, "lost": 1, "open": 1})

    def test_csat_report_distribution_and_comments(self):
        rows = self.read_group(
            "crm.whatsapp.report.csat", ["rating_count", "satisfaction_rate", "rating"], ["user_id", "rating_text"]
        )
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["user_id"][0], self.user_salesman.id)
        self.assertEqual((rows[0]["rating_text"], rows[0]["rating_count"]), ("top", 1))
        self.assertEqual((rows[0]["satisfaction_rate"], rows[0]["rating"]), (100, 5))
        comments = self.env["crm.whatsapp.report.csat"].with_user(self.user_manager).search([]).mapped("comment")
        self.assertEqual(comments, ["Super!"])

    def test_salespeople_see_their_own_rows_managers_all(self):
        reports = (
            "crm.whatsapp.session",
            "crm.whatsapp.report.conversation",
            "crm.whatsapp.report.pipeline",
            "crm.whatsapp.report.csat",
        )
        for model in reports:
            with self.subTest(model=model):
                everyone = self.env[model].with_user(self.user_manager).search([])
                mine = self.env[model].with_user(self.user_salesman).search([])
                sams = self.env[model].with_user(self.user_salesman2).search([])
                self.assertTrue(mine)
                self.assertFalse(mine & sams)
                self.assertEqual(mine | sams, everyone)
                self.assertEqual(set(mine.mapped("user_id")), {self.user_salesman})
        sam_messages = (
            self.env["crm.whatsapp.report.message"]
            .with_user(self.user_salesman2)
            .search([("account_id", "=", self.account.id)])
        )
        self.assertEqual(set(sam_messages.mapped("user_id")), {self.user_salesman2})
        [sams] = self.read_group("crm.whatsapp.report.conversation", ["open_count"], [], user=self.user_salesman2)
        self.assertEqual(sams["__count"], 1)

    def test_unassigned_sessions_seen_by_their_team_only(self):
        self.team.member_ids = self.user_salesman
        conversation = self.env["crm.whatsapp.conversation"].create(
            {"account_id": self.account.id, "wa_id": "385911999"}
        )
        unassigned = self.env["crm.whatsapp.session"].create(
            {
                "conversation_id": conversation.id,
                "account_id": self.account.id,
                "team_id": self.team.id,
                "first_inbound_at": "2026-01-12 11:30:00",
            }
        )
        for model, field in (("crm.whatsapp.session", "id"), ("crm.whatsapp.report.conversation", "session_id")):
            domain = [(field, "=", unassigned.id)]
            self.assertTrue(self.env[model].with_user(self.user_salesman).search(domain), "a member of its team")
            self.assertFalse(self.env[model].with_user(self.user_salesman2).search(domain), "not in its team")

    def test_other_company_hidden_from_managers(self):
        company2 = self.env["res.company"].create({"name": "Other Co"})
        account2 = self.env["crm.whatsapp.account"].create(
            {
                "name": "Other line",
                "company_id": company2.id,
                "waba_id": "WABA2",
                "phone_number_id": "PHONE2",
                "access_token": "token2",
            }
        )
        conversation2 = self.env["crm.whatsapp.conversation"].create({"account_id": account2.id, "wa_id": "4915100000"})
        self.env["crm.whatsapp.session"].create(
            {"conversation_id": conversation2.id, "account_id": account2.id, "first_inbound_at": "2026-01-12 09:00:00"}
        )
        for model in ("crm.whatsapp.session", "crm.whatsapp.report.conversation"):
            visible = self.env[model].with_user(self.user_manager).search([])
            self.assertEqual(len(visible), 3, model)
            self.assertEqual(len(self.env[model].search([])), 4, "the superuser sees both companies")

    def test_dashboard_loads_with_its_figures(self):
        dashboard = self.env.ref("whatsapp_crm.spreadsheet_dashboard_whatsapp").with_user(self.user_manager)
        data = dashboard.get_readonly_dashboard()
        snapshot = data["snapshot"]
        stored = json.loads(base64.b64decode(dashboard.sudo().spreadsheet_binary_data))
        self.assertEqual(snapshot["pivots"], stored["pivots"])
        self.assertEqual([sheet["name"] for sheet in snapshot["sheets"]], ["Dashboard", "Data"])
        titles = [figure["data"]["title"]["text"] for figure in snapshot["sheets"][0]["figures"]]
        for title in ("Chats", "First response median (min)", "Within target (%)", "Leads", "Won revenue"):
            self.assertIn(title, titles)
        # every pivot reads its measures as the spreadsheet asks them (with each field's aggregator)
        results = {}
        for pivot_id, pivot in snapshot["pivots"].items():
            Model = self.env[pivot["model"]].with_user(self.user_manager)
            fields = Model.fields_get([m["fieldName"] for m in pivot["measures"]], ["aggregator"])
            specs = [
                "__count" if m["fieldName"] == "__count" else f"{m['fieldName']}:{fields[m['fieldName']]['aggregator']}"
                for m in pivot["measures"]
            ]
            domain = [("account_id", "=", self.account.id)]
            results[pivot_id] = Model.read_group(domain, specs, [row["fieldName"] for row in pivot["rows"]], lazy=False)
        self.assertEqual(results["1"][0]["__count"], 3)
        self.assertAlmostEqual(results["1"][0]["first_response_median"], 30, places=4)
        self.assertEqual(results["3"][0]["won_revenue"], 1000)
        self.assertEqual(results["5"][0]["satisfaction_rate"], 100)
