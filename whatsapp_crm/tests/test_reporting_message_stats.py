from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import SQL

from ..models.crm_whatsapp_message_stat import local_day_sql
from .common import encode_payload
from .reporting_common import ReportingCase

ANNA, BORIS, CARLA = "385911000001", "385911000002", "385911000003"
DIETER = "4915100000001"


@tagged("post_install", "-at_install")
class TestReportingMessageStats(ReportingCase):
    """The messages report's hourly counts are kept as messages come, go out and change status,
    and always equal a recount of the messages themselves."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Stat = cls.env["crm.whatsapp.message.stat"]
        cls.company2 = cls.env["res.company"].create({"name": "Other Co"})
        cls.account2 = cls.env["crm.whatsapp.account"].create(
            {
                "name": "Other line",
                "company_id": cls.company2.id,
                "waba_id": "WABA2",
                "phone_number_id": "PHONE2",
                "access_token": "token2",
                "app_secret": cls.account.app_secret,
            }
        )

    def stored_rows(self, table="crm_whatsapp_message_stat", added_up=True):
        """The kept counts; ``added_up``: summed per key (new rows count before the compaction)."""
        self.env.flush_all()
        keys = SQL(
            "date, direction, message_type, state, account_id, company_id, user_id, team_id, template_id, "
            "error_code, is_automatic"
        )
        if added_up:
            query = SQL(
                "SELECT %s, SUM(message_count)::int FROM %s GROUP BY %s HAVING SUM(message_count) != 0",
                keys,
                SQL.identifier(table),
                keys,
            )
        else:
            query = SQL("SELECT %s, message_count FROM %s WHERE message_count != 0", keys, SQL.identifier(table))
        self.env.cr.execute(query)
        return sorted(self.env.cr.fetchall(), key=repr)

    def recounted_rows(self, daily=False):
        self.env.flush_all()
        query = self.Stat._recount_query()
        if daily:
            query = SQL(
                """SELECT %s, direction, message_type, state, account_id, company_id, user_id, team_id, template_id,
                          error_code, is_automatic, SUM(message_count)::int
                     FROM (%s) recount
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11""",
                local_day_sql(SQL("recount.date"), SQL("recount.account_id")),
                query,
            )
        self.env.cr.execute(query)
        return sorted(self.env.cr.fetchall(), key=repr)

    def assertCountsMatchMessages(self):
        recount, daily = self.recounted_rows(), self.recounted_rows(daily=True)
        self.assertTrue(recount)
        self.assertEqual(self.stored_rows(), recount, "the kept counts equal a recount of the messages")
        self.assertEqual(self.stored_rows("crm_whatsapp_message_stat_daily"), daily, "and so do the daily counts")
        # added up by the cron, one row per key
        self.Stat._cron_compact()
        self.assertEqual(self.stored_rows(added_up=False), recount)
        self.assertEqual(self.stored_rows("crm_whatsapp_message_stat_daily", added_up=False), daily)
        self.assertFalse(self.Stat.search_count([("pending", "=", True)]))

    def status(self, message, status, when, **extra):
        """The status webhook's change for ``message`` (as the status path applies it)."""
        moment = self.at(when)
        payload = self.status_payload(message.wamid, status, int(moment.timestamp()), **extra)
        self.env["crm.whatsapp.message"]._whatsapp_apply_statuses(message.account_id, [payload])

    def status_payload(self, wamid, status, timestamp, **extra):
        return {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": ANNA, **extra}

    def other_company_customer_says(self, when, text):
        moment = self.at(when)
        payload = self.inbound("text", {"body": text}, wa_id=DIETER, timestamp=int(moment.timestamp()))
        value = self.messages_value([payload], wa_id=DIETER, phone_number_id="PHONE2")
        envelope = self.envelope(value, waba_id="WABA2")
        Event = self.env["crm.whatsapp.webhook.event"]
        Event._store(encode_payload(envelope), envelope, self.account2)._process()
        return self.env["crm.whatsapp.message"].search([("wamid", "=", payload["id"])])

    def test_counts_follow_messages_statuses_and_companies(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        reply_anna = self.agent_replies("2026-01-12 09:10", conversation=self.conversation(ANNA))
        self.customer_says("2026-01-12 09:30", "Hello", wa_id=BORIS)
        bot = self.agent_replies("2026-01-12 09:31", "Welcome!", automatic=True, conversation=self.conversation(BORIS))
        reply_boris = self.agent_replies("2026-01-12 10:05", conversation=self.conversation(BORIS))
        self.assertCountsMatchMessages()

        # statuses move messages from one count to another, failures with their error code
        self.status(reply_anna, "delivered", "2026-01-12 09:11")
        self.status(reply_anna, "read", "2026-01-12 09:12")
        self.status(bot, "delivered", "2026-01-12 09:32")
        errors = [{"code": 131026, "title": "Message undeliverable"}]
        self.status(reply_boris, "failed", "2026-01-12 10:06", errors=errors)
        self.status(reply_anna, "delivered", "2026-01-12 09:13")  # late: statuses never go back
        self.assertEqual((reply_anna.state, reply_boris.state, reply_boris.error_code), ("read", "failed", 131026))
        self.assertCountsMatchMessages()

        # a resend after the failure, a message still queued, another company's customer
        with self.mock_whatsapp_api():
            reply_boris.action_retry()
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(reply_boris.state, "sent")
        self.at("2026-01-12 11:00")
        queued = self.conversation(ANNA).with_user(self.user_salesman)._message_whatsapp(body="Later", send_now=False)
        self.assertEqual(queued.state, "queued")
        self.other_company_customer_says("2026-01-12 11:15", "Guten Tag")
        # a chat given to another agent: what happened stays counted for whom it happened
        self.conversation(ANNA).user_id = self.user_salesman_2
        self.customer_says("2026-01-12 11:30", "Still there?", wa_id=ANNA)
        self.customer_says("2026-01-12 11:31", "Hi", wa_id=CARLA)
        self.assertCountsMatchMessages()

        # the report: volume and rates of the manager's company only (record rules)
        lines = [("account_id", "in", (self.account | self.account2).ids)]
        Report = self.env["crm.whatsapp.report.message"].with_user(self.user_manager)

        def read(measures, groupby, domain=()):
            return Report.read_group(lines + list(domain), measures, groupby, lazy=False)

        rates = ["message_count", "outbound_count", "delivered_rate", "read_rate", "failed_rate"]
        by_direction = {row["direction"]: row for row in read(rates, ["direction"])}
        Message = self.env["crm.whatsapp.message"]
        for direction in ("inbound", "outbound"):
            expected = Message.search_count(
                [*lines, ("company_id", "=", self.env.company.id), ("direction", "=", direction)]
            )
            self.assertEqual(by_direction[direction]["__count"], expected, "a message is counted once")
        self.assertEqual(by_direction["inbound"]["__count"], 4)
        # outbound: Anna's reply (read), the bot (delivered), Boris's reply (sent again), the queued one
        self.assertEqual(by_direction["outbound"]["outbound_count"], 4)
        self.assertAlmostEqual(by_direction["outbound"]["delivered_rate"], 200 / 3, places=4)
        self.assertAlmostEqual(by_direction["outbound"]["read_rate"], 100 / 3, places=4)
        self.assertEqual(by_direction["outbound"]["failed_rate"], 0)
        inbound = read(["message_count"], ["user_id"], [("direction", "=", "inbound")])
        by_agent = {row["user_id"] and row["user_id"][0]: row["__count"] for row in inbound}
        self.assertEqual(by_agent[self.user_salesman_2.id], 1, "Anna's message after the chat changed hands")
        self.assertEqual(sum(by_agent.values()), 4)
        by_hour = {row["hour"]: row["__count"] for row in read(["message_count"], ["hour"])}
        # Boris's reply was sent again at 09:13: it moved from 10:00 to 09:00
        self.assertEqual(by_hour, {"09": 5, "11": 3})
        everything = self.env["crm.whatsapp.report.message"].read_group(
            lines, ["message_count"], ["company_id"], lazy=False
        )
        self.assertEqual({row["company_id"][0]: row["__count"] for row in everything}[self.company2.id], 1)
        self.assertNotIn(self.company2, Report.search([]).company_id)

    def test_rebuild_recounts_the_messages(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        reply = self.agent_replies("2026-01-12 09:10", conversation=self.conversation(ANNA))
        self.status(reply, "read", "2026-01-12 09:11")
        kept = self.stored_rows()
        self.env.cr.execute("UPDATE crm_whatsapp_message_stat SET message_count = message_count + 7")
        self.Stat.action_rebuild()
        self.assertEqual(self.stored_rows(), kept)
        with self.assertRaises(AccessError):
            self.Stat.with_user(self.user_manager).action_rebuild()

    def test_report_views_and_list(self):
        Report = self.env["crm.whatsapp.report.message"].with_user(self.user_manager)
        views = Report.get_views([(False, view) for view in ("pivot", "graph", "list", "search")])
        self.assertEqual(set(views["views"]), {"pivot", "graph", "list", "search"})
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        self.customer_says("2026-01-12 09:20", "Anyone?", wa_id=ANNA)
        self.agent_replies("2026-01-12 09:30", conversation=self.conversation(ANNA))
        self.Stat._cron_compact()
        fields = ["date", "direction", "message_type", "state", "account_id", "user_id", "message_count"]
        rows = Report.search_read([("account_id", "=", self.account.id)], fields)
        self.assertEqual(
            sorted((row["direction"], row["state"], row["message_count"]) for row in rows),
            [("inbound", "received", 2), ("outbound", "sent", 1)],
            "a line of the list counts the messages of one hour and kind",
        )

    def test_deleted_conversation_leaves_the_counts(self):
        self.customer_says("2026-01-12 09:00", "Hi", wa_id=ANNA)
        self.agent_replies("2026-01-12 09:10", conversation=self.conversation(ANNA))
        self.customer_says("2026-01-12 09:20", "Hi", wa_id=BORIS)
        self.conversation(ANNA).unlink()
        self.assertCountsMatchMessages()
