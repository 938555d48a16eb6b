"""Fixtures of the reporting tests: a team with office hours, scripted customer messages and replies."""

from datetime import datetime

from freezegun import freeze_time

from .common import WhatsappCase, encode_payload
from .webhook_common import CUSTOMER_WA_ID, WebhookPayloads


class ReportingCase(WhatsappCase, WebhookPayloads):
    """The team works Monday to Friday, 9:00 to 17:00 UTC, and answers within an hour."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "WhatsApp office hours",
                "tz": "UTC",
                "attendance_ids": [
                    (0, 0, {"name": f"Day {day}", "dayofweek": str(day), "hour_from": 9, "hour_to": 17})
                    for day in range(5)
                ],
            }
        )
        cls.team.write({"whatsapp_resource_calendar_id": cls.calendar.id, "whatsapp_sla_minutes": 60})
        cls.account.write({"user_ids": [(6, 0, cls.user_salesman.ids)], "lead_policy": "no_open_lead"})
        cls.Session = cls.env["crm.whatsapp.session"]

    def at(self, when):
        """Freeze time at ``when`` ("YYYY-MM-DD HH:MM", UTC) for the rest of the test, or until the next call."""
        if getattr(self, "_frozen", None):
            self._frozen.stop()
        self._frozen = freeze_time(when)
        self._frozen.start()
        self.env.invalidate_all()  # e.g. whether the window is open
        self.addCleanup(self._stop_frozen)
        return datetime.fromisoformat(when)

    def _stop_frozen(self):
        if getattr(self, "_frozen", None):
            self._frozen.stop()
            self._frozen = None

    def customer_says(self, when, text="Hello", wa_id=CUSTOMER_WA_ID, kind="text", content=None, **extra):
        """At ``when``, the customer's message arrives through webhook processing; return it."""
        moment = self.at(when)
        content = content if content is not None else {"body": text}
        payload = self.inbound(kind, content, wa_id=wa_id, timestamp=int(moment.timestamp()), **extra)
        envelope = self.envelope(self.messages_value([payload], wa_id=wa_id))
        Event = self.env["crm.whatsapp.webhook.event"]
        Event._store(encode_payload(envelope), envelope, self.account)._process()
        message = self.env["crm.whatsapp.message"].search([("wamid", "=", payload["id"])])
        self.assertEqual(len(message), 1)
        return message

    def agent_replies(self, when, text="Hi, how can I help?", user=None, automatic=False, conversation=None):
        """At ``when``, an agent (or, ``automatic``, a bot as the system) sends a text through the
        send API and the mock; return the message."""
        self.at(when)
        conversation = conversation or self.conversation()
        if automatic:
            sender, values = conversation.sudo(), {"is_automatic": True}
        else:
            sender, values = conversation.with_user(user or self.user_salesman), None
        with self.mock_whatsapp_api():
            message = sender._message_whatsapp(body=text, message_values=values, send_now=True)
        self.assertEqual(message.state, "sent", message.error_message)
        return message.sudo()

    def conversation(self, wa_id=CUSTOMER_WA_ID):
        return self.env["crm.whatsapp.conversation"].search([("wa_id", "=", wa_id)])

    def tap(self, when, survey, number, title="", wa_id=CUSTOMER_WA_ID):
        """At ``when``, the customer taps the reply button ``number`` (1: good) of ``survey``."""
        reply = {"type": "button_reply", "button_reply": {"id": f"button_{number}", "title": title}}
        return self.customer_says(when, kind="interactive", content=reply, wa_id=wa_id, context={"id": survey.wamid})

    def sessions(self, wa_id=CUSTOMER_WA_ID):
        return self.Session.search([("conversation_id", "=", self.conversation(wa_id).id)], order="id")
