"""In headless Chromium, as the least-privileged salesperson: the chat is live, on a desktop's
screen and on a phone's."""

from unittest.mock import patch

from odoo.sql_db import TestCursor
from odoo.tests import HttpCase, tagged

from odoo.addons.bus.models.bus import dispatch, hashable
from odoo.addons.bus.websocket import WebsocketConnectionHandler

from .common import WhatsappCase, WhatsappEmulatorMixin

CUSTOMER_WA_ID = "32470123456"
NOTE = "Call her back about the delivery date"


def _commit_and_dispatch(commit):
    """Odoo's test cursor drops post-commit hooks, so the bus never says NOTIFY: wake the
    websockets listening to the channels of this commit, as the bus dispatcher would."""

    def wrapper(cursor):
        channels = list(cursor.postcommit.data.get("bus.bus.channels") or ())
        commit(cursor)
        for channel in channels:
            for websocket in list(dispatch._channels_to_ws.get(hashable(channel), ())):
                websocket.trigger_notification_dispatching()

    return wrapper


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxUi(HttpCase, WhatsappCase, WhatsappEmulatorMixin):
    tour = "whatsapp_crm_live_tour"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.object(WebsocketConnectionHandler, "websocket_allowed", return_value=True))
        cls.startClassPatcher(patch.object(TestCursor, "commit", _commit_and_dispatch(TestCursor.commit)))
        # no cron runs during a tour: the webhook's wake-up applies the deliveries at once
        Event = type(cls.env["crm.whatsapp.webhook.event"])
        cls.startClassPatcher(patch.object(Event, "_wake", lambda self, lane: self._cron_process()))
        cls._create_customer_chat({"mobile": "+32 470 12 34 56"}, "Do you have the sofa in blue?")
        cls.conversation.unread_count = 0
        cls.env["crm.whatsapp.canned.response"].create(
            {"shortcut": "price", "body": "Our sofas start at 499 EUR.", "scope": "all", "user_id": cls.user_manager.id}
        )

    def test_live_chat(self):
        self.run_live_tour()

    def run_live_tour(self):
        emulator = self.start_emulator(auto_statuses=True, status_delay=0.3)
        emulator.open_window(CUSTOMER_WA_ID)
        self.start_tour(f"/odoo/crm/{self.lead.id}", self.tour, login=self.user_salesman.login)
        question, answer = self.conversation.message_ids_wa.sorted("id")[-2:]
        self.assertRecordValues(
            question | answer,
            [
                {"direction": "inbound", "body": "Can I get a price for the blue one?", "read_receipt": "pending"},
                {"direction": "outbound", "body": "Our sofas start at 499 EUR.", "read_receipt": False},
            ],
        )
        self.assertRecordValues(answer, [{"state": "read", "author_id": self.user_salesman.id}])
        self.assertEqual(self.conversation.unread_count, 0)
        # the internal note: in the conversation's chatter, never a WhatsApp message
        notes = self.env["mail.message"].search(
            [
                ("model", "=", self.conversation._name),
                ("res_id", "=", self.conversation.id),
                ("message_type", "=", "comment"),
            ]
        )
        self.assertRecordValues(
            notes, [{"subtype_id": self.env.ref("mail.mt_note").id, "author_id": self.user_salesman.partner_id.id}]
        )
        self.assertIn(NOTE, notes.body)
        self.assertEqual(self.conversation.message_ids_wa.sorted("id")[-1], answer, "the note was not sent")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxUiMobile(TestInboxUi):
    """The same tour in Odoo's mobile layout: a phone-sized, touch screen, where no WhatsApp id
    (``wamid.``) is ever shown."""

    browser_size = "375x667"
    touch_enabled = True
    tour = "whatsapp_crm_live_mobile_tour"

    def test_live_chat(self):
        # Odoo's loader runs only the methods a class defines itself
        self.run_live_tour()
