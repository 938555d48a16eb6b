import base64
from datetime import timedelta

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged, users

from .test_outbound_send import NOW, WINDOW_TEXT, OutboundCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundComposer(OutboundCase):
    """The composer as a salesperson: from the lead form, the contact form and list views."""

    def _composer_form(self, records, **context):
        return Form(
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .with_context(default_res_model=records._name, default_res_id=records.id, **context)
        )

    def test_window_open_free_text(self):
        form = self._composer_form(self.lead)
        self.assertTrue(form.window_open)
        self.assertEqual(form.window_expires_at, NOW + timedelta(hours=23))
        self.assertEqual(form.kind, "text")
        form.body = "Your quote is ready"
        self.assertEqual(form.preview, "Your quote is ready")
        composer = form.save()
        with self.mock_whatsapp_api():
            action = composer.action_send()
        self.assertEqual(action["params"]["type"], "success")
        message = self.lead.whatsapp_message_ids
        self.assertEqual(len(message), 1)
        self.assertRecordValues(
            message,
            [
                {
                    "direction": "outbound",
                    "state": "sent",
                    "author_id": self.user_salesman.id,
                    "conversation_id": self.conversation.id,
                    "partner_id": self.partner.id,
                    "body": "Your quote is ready",
                }
            ],
        )
        self.assertEqual(self.sent_payloads()[0]["text"]["body"], "Your quote is ready")
        self.assertEqual(message.mail_message_id.author_id, self.user_salesman.partner_id)

    def test_window_closed_only_templates(self):
        self._close_window()
        form = self._composer_form(self.lead)
        self.assertFalse(form.window_open)
        self.assertEqual(form.kind, "template")
        with self.assertRaises(AssertionError):  # free text is read-only outside the window
            form.body = "Hello"
        form.template_id = self.template
        self.assertEqual(form.preview, "Hello Alice Customer, your order Big deal is ready.")
        composer = form.save()
        # the server refuses free text whatever the client sends
        composer.write({"kind": "text", "body": "Hello"})
        with self.mock_whatsapp_api():
            with self.assertUserError(WINDOW_TEXT):
                composer.action_send()
            self.assertFalse(self._wa_requests)
            composer.write({"kind": "template"})
            composer.action_send()
        self.assertEqual(self.sent_payloads()[0]["template"]["name"], "order_ready")
        message = self.lead.whatsapp_message_ids
        self.assertEqual(message.body, "Hello Alice Customer, your order Big deal is ready.")
        self.assertEqual(message.template_parameters, {"1": "Alice Customer", "2": "Big deal"})

    def test_partner_form_attachments(self):
        form = self._composer_form(self.partner)
        self.assertEqual(form.recipient, self.conversation.display_name)
        form.body = "Here is the picture"
        composer = form.save()
        attachments = (
            self.env["ir.attachment"]
            .with_user(self.user_salesman)
            .create(
                [
                    {
                        "name": "photo.png",
                        "datas": base64.b64encode(b"\x89PNG fake"),
                        "mimetype": "image/png",
                        "res_model": "crm.whatsapp.composer",
                        "res_id": composer.id,
                    },
                    {
                        "name": "voice.ogg",
                        "datas": base64.b64encode(b"OggS fake"),
                        "mimetype": "audio/ogg",
                        "res_model": "crm.whatsapp.composer",
                        "res_id": composer.id,
                    },
                ]
            )
        )
        composer.attachment_ids = attachments
        with self.mock_whatsapp_api():
            composer.action_send()
        payloads = self.sent_payloads()
        self.assertEqual([p["type"] for p in payloads], ["image", "audio"])
        self.assertEqual(payloads[0]["image"], {"id": "media-upload-1", "caption": "Here is the picture"})
        self.assertEqual(payloads[1]["audio"], {"id": "media-upload-1"})
        messages = self.partner.whatsapp_message_ids
        self.assertEqual(set(messages.mapped("state")), {"sent"})
        self.assertEqual(messages.mail_message_id.mapped("model"), ["res.partner", "res.partner"])

    def test_reply_buttons(self):
        form = self._composer_form(self.lead)
        form.kind = "buttons"
        form.body = "Shall we meet?"
        form.button_1 = "Yes"
        form.button_2 = "Another day"
        self.assertEqual(form.preview, "Shall we meet?\n\n[Yes] | [Another day]")
        with self.mock_whatsapp_api():
            form.save().action_send()
        self.assertEqual(
            self.sent_payloads()[0]["interactive"]["action"]["buttons"],
            [
                {"type": "reply", "reply": {"id": "button_1", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "button_2", "title": "Another day"}},
            ],
        )

    def test_api_failure_reported(self):
        form = self._composer_form(self.lead)
        form.body = "Hello"
        with self.mock_whatsapp_api(sim_error=self.api_error(131026)):
            action = form.save().action_send()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("may not be on WhatsApp", action["params"]["message"])
        self.assertEqual(self.lead.whatsapp_message_ids.state, "failed")

    def test_lead_without_conversation(self):
        """A conversation is created from the lead's number."""
        lead = self.env["crm.lead"].create(
            {"name": "New lead", "user_id": self.user_salesman.id, "contact_name": "Bob", "mobile": "+32 470 99 88 77"}
        )
        form = self._composer_form(lead)
        self.assertFalse(form.window_open)
        self.assertEqual(form.recipient, "+32470998877")
        form.template_id = self.template
        with self.mock_whatsapp_api():
            form.save().action_send()
        self.assertEqual(self.sent_payloads()[0]["to"], "+32470998877")
        conversation = lead.whatsapp_message_ids.conversation_id
        self.assertEqual(conversation.wa_id, "32470998877")
        self.assertEqual(conversation.lead_id, lead)

    def test_no_number(self):
        lead = self.env["crm.lead"].create({"name": "No phone", "user_id": self.user_salesman.id})
        form = self._composer_form(lead)
        form.template_id = self.template
        with self.mock_whatsapp_api(), self.assertUserError("has no WhatsApp number"):
            form.save().action_send()

    def test_mass_queue_from_list(self):
        other_partner = self.env["res.partner"].create({"name": "Carol", "mobile": "+32 470 55 44 33"})
        leads = self.lead | self.env["crm.lead"].create(
            [
                {"name": "Carol's deal", "partner_id": other_partner.id, "user_id": self.user_salesman.id},
                {"name": "Nobody", "user_id": self.user_salesman.id},
            ]
        )
        form = Form(
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .with_context(active_model="crm.lead", active_ids=leads.ids, default_composition_mode="mass")
        )
        self.assertEqual(form.composition_mode, "mass")
        form.kind = "template"
        form.template_id = self.template
        composer = form.save()
        triggers = self.env["ir.cron.trigger"].search_count([])
        with self.mock_whatsapp_api():
            action = composer.action_send()
            self.assertFalse(self._wa_requests, "mass sending only queues")
            messages = leads.whatsapp_message_ids
            self.assertEqual(sorted(messages.mapped("state")), ["queued", "queued", "refused"])
            self.assertGreater(self.env["ir.cron.trigger"].search_count([]), triggers, "the cron runs at once")
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertIn("2 WhatsApp messages queued, 1 refused", action["params"]["message"])
        self.assertEqual(sorted(messages.mapped("state")), ["refused", "sent", "sent"])
        self.assertEqual(
            sorted(p["template"]["components"][0]["parameters"][1]["text"] for p in self.sent_payloads()),
            ["Big deal", "Carol's deal"],
        )

    def test_from_conversation_reply(self):
        customer_message = self._message(direction="inbound", state="received", wamid="wamid.CUSTOMER1")
        form = self._composer_form(self.conversation, default_reply_to_id=customer_message.id)
        self.assertEqual(form.account_id, self.account)
        form.body = "Answering your question"
        with self.mock_whatsapp_api():
            form.save().action_send()
        self.assertEqual(self.sent_payloads()[0]["context"], {"message_id": "wamid.CUSTOMER1"})
        reply = self.conversation.message_ids_wa.filtered(lambda m: m.direction == "outbound")
        self.assertRecordValues(reply, [{"reply_to_id": customer_message.id, "lead_id": self.lead.id}])
        self.assertEqual(reply.mail_message_id.res_id, self.lead.id, "logged on the conversation's lead")

    def test_conversation_on_another_account(self):
        """Writing from another of our numbers reaches the same customer there."""
        other_account = self.account.copy({"name": "Second line", "phone_number_id": "109000000000002"})
        other_account.access_token = "other-token"
        other_template = self.env["crm.whatsapp.template"].create(
            {
                "name": "hello",
                "account_id": other_account.id,
                "status": "approved",
                "body": "Hello {{1}}",
                "variable_ids": [(0, 0, {"placeholder": "1", "field_path": "partner_id.name"})],
            }
        )
        form = self._composer_form(self.conversation)
        form.account_id = other_account
        self.assertFalse(form.window_open, "the customer never wrote to the second line")
        form.template_id = other_template
        with self.mock_whatsapp_api():
            form.save().action_send()
        self.assertEqual(self._wa_requests[0]["path"], "109000000000002/messages")
        message = self.lead.whatsapp_message_ids
        self.assertEqual(message.account_id, other_account)
        self.assertEqual(message.conversation_id.account_id, other_account)
        self.assertEqual(message.conversation_id.wa_id, self.conversation.wa_id)
        self.assertEqual(message.body, "Hello Alice Customer")

    def test_new_conversation_owner(self):
        """A conversation a user starts is theirs (or the lead's salesperson's), not the next agent's."""
        self.account.user_ids = self.user_manager  # the agent in turn
        Partner = self.env["res.partner"]
        alice, bob, carol = Partner.create(
            [
                {"name": "Alice New", "mobile": "+32 470 99 88 71"},
                {"name": "Bob New", "mobile": "+32 470 99 88 72"},
                {"name": "Carol New", "mobile": "+32 470 99 88 73"},
            ]
        )
        lead = self.env["crm.lead"].create(
            {"name": "Bob's deal", "partner_id": bob.id, "user_id": self.user_salesman.id}
        )
        with self.mock_whatsapp_api():
            from_form = alice.with_user(self.user_salesman)._message_whatsapp("Hi", account=self.account)
            from_automation = lead.sudo()._message_whatsapp("Hi", account=self.account)
            unowned = carol.sudo()._message_whatsapp("Hi", account=self.account)
        from_form, from_automation, unowned = (m.sudo().conversation_id for m in (from_form, from_automation, unowned))
        self.assertEqual(from_form.user_id, self.user_salesman)
        self.assertEqual(from_automation.user_id, self.user_salesman)
        self.assertEqual(from_automation.lead_id, lead)
        self.assertEqual(unowned.user_id, self.user_manager)

    def test_account_of_the_conversation(self):
        """With several numbers, the composer answers from the number the customer talks to."""
        other = self.env["crm.whatsapp.account"].create(
            {"name": "Other line", "sequence": -1, "waba_id": "WABA-2", "phone_number_id": "PN-2", "access_token": "t"}
        )
        self.assertEqual(self.env["crm.whatsapp.account"].search([], limit=1), other, "the other line comes first")
        for record in (self.lead, self.partner, self.conversation):
            self.assertEqual(self._composer_form(record).account_id, self.account, record._name)
        newcomer = self.env["res.partner"].create({"name": "No chat yet", "mobile": "+32 470 55 44 33"})
        self.assertEqual(self._composer_form(newcomer).account_id, other, "no conversation: the first line")

    def test_attachment_of_another_document(self):
        """Files are sent only if the user may read them; another document keeps its files."""
        secret_lead = self.env["crm.lead"].create({"name": "Secret deal", "user_id": self.user_manager.id})
        secret_file = self.env["ir.attachment"].create(
            {
                "name": "contract.pdf",
                "raw": b"%PDF confidential",
                "mimetype": "application/pdf",
                "res_model": "crm.lead",
                "res_id": secret_lead.id,
            }
        )
        form = self._composer_form(self.lead)
        form.body = "Here is the contract"
        composer = form.save()
        composer.attachment_ids = secret_file  # over RPC: any id
        with self.mock_whatsapp_api(), self.assertRaises(AccessError):
            composer.action_send()
        self.assertFalse(self._wa_requests)
        self.assertEqual((secret_file.res_model, secret_file.res_id), ("crm.lead", secret_lead.id))

    def test_several_records_always_queued(self):
        """A composer for several records queues even if told to send at once (RPC)."""
        other = self.env["res.partner"].create({"name": "Carol", "mobile": "+32 470 55 44 33"})
        leads = self.lead | self.env["crm.lead"].create(
            {"name": "Carol's deal", "partner_id": other.id, "user_id": self.user_salesman.id}
        )
        composer = (
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .create(
                {
                    "res_model": "crm.lead",
                    "res_ids": repr(leads.ids),
                    "composition_mode": "single",
                    "kind": "template",
                    "template_id": self.template.id,
                }
            )
        )
        composer.composition_mode = "single"
        with self.mock_whatsapp_api():
            action = composer.action_send()
        self.assertFalse(self._wa_requests, "nothing sent outside the throttled queue")
        self.assertEqual(leads.whatsapp_message_ids.mapped("state"), ["queued", "queued"])
        self.assertIn("2 WhatsApp messages queued", action["params"]["message"])

    def test_mass_two_leads_of_one_contact(self):
        """The same text to two leads of one contact reaches the customer once; templates
        filled with each lead's own values are two different messages."""
        second_lead = self.env["crm.lead"].create(
            {"name": "Second deal", "partner_id": self.partner.id, "user_id": self.user_salesman.id}
        )
        leads = self.lead | second_lead
        self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.pair_rate_burst", "3")  # no waiting
        Composer = (
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .with_context(active_model="crm.lead", active_ids=leads.ids)
        )
        with self.mock_whatsapp_api():
            action = Composer.create({"kind": "text", "body": "Our shop is closed on Monday"}).action_send()
            messages = self.conversation.message_ids_wa
            self.assertEqual(len(messages), 1)
            self.assertIn("1 identical messages to the same customer were left out", action["params"]["message"])
            Composer.create({"kind": "template", "template_id": self.template.id}).action_send()
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(
            sorted(
                p.get("text", {}).get("body") or p["template"]["components"][0]["parameters"][1]["text"]
                for p in self.sent_payloads()
            ),
            ["Big deal", "Our shop is closed on Monday", "Second deal"],
        )

    @users("wa_salesman")
    def test_send_now_goes_through_the_throttle(self):
        """The immediate send obeys the queue's pair rate: two messages to one customer go at
        once, a third waits for the cron instead of breaking Meta's limit."""
        self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.send_now_seconds", "0.5")
        actions = []
        with self.mock_whatsapp_api():
            for body in ("One", "Two", "Three"):
                form = self._composer_form(self.lead)
                form.body = body
                actions.append(form.save().action_send())
        self.assertEqual([p["text"]["body"] for p in self.sent_payloads()], ["One", "Two"])
        self.assertEqual([a["params"]["type"] for a in actions], ["success", "success", "info"])
        third = self.lead.whatsapp_message_ids.filtered(lambda m: m.body == "Three")
        self.assertWhatsAppOutgoing(third)
