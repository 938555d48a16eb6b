"""The emulator's customer phone page, in Chromium: what the customer does reaches Odoo."""

from odoo.tests import HttpCase, tagged

from .common import WhatsappCase, WhatsappEmulatorMixin

CUSTOMER = "385911234567"


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestCustomerPhone(WhatsappEmulatorMixin, HttpCase, WhatsappCase):
    def _wait_for_bubble(self, selector, text):
        """Browser code: log success once a bubble matching ``selector`` shows ``text``."""
        return f"""
            const deadline = Date.now() + 20000;
            (function wait() {{
                const bubble = [...document.querySelectorAll({selector!r})]
                    .find((node) => node.textContent.includes({text!r}));
                if (bubble && !bubble.querySelector(".ticks.failed")) {{
                    console.log("test successful");
                }} else if (Date.now() > deadline) {{
                    console.error("no bubble " + {selector!r} + " with " + {text!r} + ": "
                        + document.getElementById("messages").textContent);
                }} else {{
                    setTimeout(wait, 100);
                }}
            }})();
        """

    def _open_phone(self, emulator, code):
        self.browser_js(
            f"{emulator.base_url}/phone/?wa_id={CUSTOMER}&name=Ivana%20Horvat",
            code,
            ready="!document.getElementById('phone').hidden",
        )

    def _customer_chat(self, emulator, body):
        """The customer wrote ``body`` from the phone: the conversation the webhook made of it."""
        emulator.send_inbound("text", CUSTOMER, name="Ivana Horvat", body=body)
        self.process_webhooks()
        return self.env["crm.whatsapp.conversation"].search([("wa_id", "=", CUSTOMER)])

    def _send_answer(self, conversation, message_type, body, **values):
        """An agent's answer in ``conversation``, sent to the emulator."""
        message = self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "conversation_id": conversation.id,
                "partner_id": conversation.partner_id.id,
                "lead_id": conversation.lead_id.id,
                "author_id": self.env.uid,
                "direction": "outbound",
                "message_type": message_type,
                "body": body,
                **values,
            }
        )
        message._send(raise_exception=True)
        return message

    def test_message_typed_on_the_phone_arrives_in_odoo(self):
        emulator = self.start_emulator()
        text = "Dobar dan, imate li hrastov stol na zalihi?"
        code = f"""
            document.getElementById("text").value = {text!r};
            document.getElementById("send").click();
        """ + self._wait_for_bubble(".bubble.in", text)
        self._open_phone(emulator, code)
        self.process_webhooks()
        webhook = emulator.webhooks[-1]
        self.assertEqual(webhook["status"], 200, "Odoo accepted the signed webhook")
        self.assertTrue(webhook["headers"]["X-Hub-Signature-256"].startswith("sha256="))
        message = self.env["crm.whatsapp.message"].search([("body", "=", text)])
        self.assertEqual(len(message), 1)
        self.assertEqual(message.direction, "inbound")
        self.assertEqual(message.conversation_id.wa_id, CUSTOMER)
        self.assertEqual(message.conversation_id.account_id, self.account)
        self.assertEqual(message.conversation_id.profile_name, "Ivana Horvat")

    def test_reply_from_odoo_shows_on_the_phone_with_its_ticks(self):
        emulator = self.start_emulator(auto_statuses=True, status_delay=0.05)
        conversation = self._customer_chat(emulator, "Imate li hrast?")
        self.assertEqual(len(conversation), 1)
        answer = "Imamo, hrastov stol je na zalihi."
        reply = self._send_answer(conversation, "text", answer)
        self._open_phone(emulator, self._wait_for_bubble(".bubble.out:has(.ticks.read)", answer))
        self.assertEqual(emulator.sent_messages[reply.wamid]["to"], CUSTOMER)

    def test_tapping_a_reply_button_answers_the_business_message(self):
        emulator = self.start_emulator()
        conversation = self._customer_chat(emulator, "Koje boje imate?")
        buttons = [{"id": "oak", "title": "Hrast"}, {"id": "white", "title": "Bijela"}]
        question = self._send_answer(conversation, "interactive", "Hrast ili bijela?", buttons=buttons)
        code = """
            (function tap() {
                const button = [...document.querySelectorAll(".bubble.out .buttons button")]
                    .find((node) => node.textContent === "Hrast");
                if (button) { button.click(); } else { setTimeout(tap, 100); }
            })();
        """ + self._wait_for_bubble(".bubble.in", "↩ Hrast")
        self._open_phone(emulator, code)
        self.process_webhooks()
        answer = self.env["crm.whatsapp.message"].search(
            [("conversation_id", "=", conversation.id), ("direction", "=", "inbound")], order="id desc", limit=1
        )
        self.assertIn("Hrast", answer.body)
        self.assertEqual(answer.reply_to_id, question, "the tap answers the business message")
