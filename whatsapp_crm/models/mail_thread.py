"""The one public API sending WhatsApp messages from any document, like ``sms`` offers
``_message_sms``. The composer, mass actions, server actions, the bot and campaigns call it."""

from odoo import _, fields, models
from odoo.exceptions import UserError

from ..tools.phone import wa_digits, wa_id_variants


class MailThread(models.AbstractModel):
    _inherit = "mail.thread"

    # ------------------------------------------------------------
    # Recipients
    # ------------------------------------------------------------

    def _whatsapp_get_recipients_info(self, account=None):
        """Who each record's WhatsApp message goes to, like ``_sms_get_recipients_info``.

        The number comes from the record's phone fields (``_phone_get_number_fields``), else from
        its customer (``_mail_get_partners``). Leads, contacts and conversations override this for
        their own fields. Conversations are looked up for all records at once.

        :param account: the ``crm.whatsapp.account`` sending; ``conversation`` is looked up in it
        :return: ``{record.id: {
            "partner": res.partner, the customer (void or singleton),
            "number": the number in E.164 ("+32470123456"), or False,
            "lead": crm.lead the message is about (void or singleton),
            "conversation": the existing crm.whatsapp.conversation of ``account`` with this
                customer, as superuser (void if none; the caller checks the user may use it),
            "user": res.users answering a conversation started for this record,
        }}``
        """
        Partner = self.env["res.partner"]
        partners = self._mail_get_partners() if self else {}
        user = self.env.user if not self.env.su and self.env.user._is_internal() else self.env["res.users"]
        result = {}
        for record in self:
            partner = partners.get(record.id, Partner)[:1]
            number = record._whatsapp_number() or partner._whatsapp_number()
            result[record.id] = {
                "partner": partner,
                "number": number,
                "lead": self.env["crm.lead"],
                "conversation": self.env["crm.whatsapp.conversation"].sudo(),
                "user": user,
            }
        if account:
            self._whatsapp_find_conversations(account, result)
        return result

    def _whatsapp_number(self):
        """The record's own number in E.164 (mobile first), or False."""
        if not self:
            return False
        self.ensure_one()
        for fname in self._phone_get_number_fields():
            if fname in self._fields and self[fname]:
                number = self._phone_format(fname=fname, raise_exception=False)
                if number:
                    return number
        return False

    def _whatsapp_find_conversations(self, account, infos):
        """Fill ``conversation`` in ``infos`` with each customer's conversation of ``account``:
        by number (any WhatsApp spelling of it), else by contact. Two queries for the batch."""
        Conversation = self.env["crm.whatsapp.conversation"].sudo()
        missing = [info for info in infos.values() if not info["conversation"]]
        variants = {info["number"]: wa_id_variants(wa_digits(info["number"])) for info in missing if info["number"]}
        by_wa_id = {}
        if variants:
            wa_ids = sorted({v for values in variants.values() for v in values})
            for conversation in Conversation.search(
                [("account_id", "=", account.id), ("wa_id", "in", wa_ids)], order="id desc"
            ):
                by_wa_id[conversation.wa_id] = conversation
        partner_ids = [info["partner"].id for info in missing if info["partner"] and not info["number"]]
        by_partner = {}
        if partner_ids:
            for conversation in Conversation.search(
                [("account_id", "=", account.id), ("partner_id", "in", partner_ids)], order="id desc"
            ):
                by_partner[conversation.partner_id.id] = conversation
        for info in missing:
            found = next((by_wa_id[v] for v in variants.get(info["number"], ()) if v in by_wa_id), None)
            info["conversation"] = found or by_partner.get(info["partner"].id, Conversation)

    def _whatsapp_conversations(self):
        """Conversations these records are known by (any account, as superuser): their customers'."""
        partners = self.env["res.partner"].union(*self._mail_get_partners().values()) if self else None
        return partners.sudo().whatsapp_conversation_ids if partners else self.env["crm.whatsapp.conversation"]

    def _whatsapp_default_account(self):
        """The account that last talked with these records, else the first account of their
        company (documents of a company are answered from that company's numbers), else of the
        user's companies."""
        company = self[:1].company_id if "company_id" in self._fields else self.env["res.company"]
        conversations = self._whatsapp_conversations()
        if company:
            conversations = conversations.filtered(lambda c: c.company_id == company)
        epoch = fields.Datetime.to_datetime("1970-01-01")
        latest = conversations.sorted(lambda c: (c.last_message_at or epoch, c.id))[-1:]
        Account = self.env["crm.whatsapp.account"]
        if latest.account_id and latest.account_id.active:
            return Account.browse(latest.account_id.id)
        return Account.search([("company_id", "in", (company or self.env.companies).ids)], limit=1)

    # ------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------

    def _message_whatsapp(
        self,
        body="",
        account=None,
        template=None,
        attachments=None,
        buttons=None,
        reply_to=None,
        reaction_to=None,
        message_values=None,
        send_now=False,
        raise_exception=False,
    ):
        """Send a WhatsApp message to the customer of each of these records.

        Each record's customer gets the message in their conversation with ``account`` (started
        if needed), as the current user; it is logged in the record's chatter with its delivery
        status. The policy (``crm.whatsapp.message._whatsapp_policy_refusals``) decides, for the
        whole batch at once; refused messages are kept with their reason. The same message to
        one customer through two records (two leads of one contact) is created once.

        :param body: the text (the caption of the first attachment when it can have one)
        :param account: crm.whatsapp.account sending; default: ``_whatsapp_default_account()``
        :param template: an approved crm.whatsapp.template, rendered for each record
        :param attachments: ir.attachment to send, one message each
        :param buttons: titles of up to 3 reply buttons (an interactive message with ``body``)
        :param reply_to: crm.whatsapp.message this answers (quoted by WhatsApp)
        :param reaction_to: crm.whatsapp.message that ``body`` (an emoji) reacts to
        :param message_values: extra values of every crm.whatsapp.message (e.g. a campaign)
        :param send_now: send a single record's messages in this request (through the throttle);
            otherwise, and always for several records, the queue's cron sends them
        :param raise_exception: refusals (policy, template rendering, access) raise a UserError
            instead of being recorded, so that the user sees them and nothing is created
        :return: the crm.whatsapp.message records created (queued, refused; sent, failed or
            unconfirmed when sent now)
        """
        Message = self.env["crm.whatsapp.message"]
        if not self:
            return Message
        self.check_access("read")
        account = account or self._whatsapp_default_account()
        if not account:
            raise UserError(_("Configure a WhatsApp account first."))
        account.check_access("read")
        if attachments:
            # only files the user may read
            attachments.check("read")
        if template:
            template.check_access("read")
        if reply_to:
            reply_to.check_access("read")
        if reaction_to:
            reaction_to.check_access("read")
        parts = Message._whatsapp_parts(body, template, attachments, buttons, reaction_to=reaction_to)
        infos = self._whatsapp_get_recipients_info(account=account)
        # the template's variables, rendered for all the records at once; a record lacking a value
        # is refused with the reason
        render_errors = {}
        rendered = template._render_values_batch(self, errors=render_errors) if template else {}
        values_list, seen = [], set()
        for record in self:
            conversation, refusal = record._whatsapp_conversation_for(account, infos[record.id])
            if refusal and raise_exception:
                raise UserError(refusal)
            info = infos[record.id]
            common = {
                "account_id": account.id,
                "conversation_id": conversation.id,
                "partner_id": (conversation.partner_id or info["partner"]).id,
                "lead_id": info["lead"].id,
                "author_id": self.env.uid,
                "direction": "outbound",
                "state": "queued",
                "reply_to_id": reply_to.id if reply_to else False,
                **(message_values or {}),
            }
            if refusal:
                common.update(state="refused", error_message=refusal)
            for part in parts:
                values = {**common, **part}
                if template and not refusal and record.id in render_errors:
                    if raise_exception:
                        raise UserError(render_errors[record.id])
                    values.update(state="refused", error_message=render_errors[record.id])
                elif template and not refusal:
                    parameters = rendered[record.id]
                    values.update(template_parameters=parameters, body=template._render_text(parameters))
                key = (
                    conversation.id,
                    values["message_type"],
                    values.get("body"),
                    repr(sorted((values.get("template_parameters") or {}).items())),
                    repr(values.get("attachment_ids")),
                )
                if conversation and key in seen:
                    continue
                seen.add(key)
                values_list.append(values)
        # sudo: only the system creates messages; the access to every record was checked above
        messages = Message.sudo().create(values_list).with_env(self.env)
        if send_now and len(self) == 1:
            messages._send(raise_exception=raise_exception)
        else:
            messages._enqueue()
        return messages

    def _whatsapp_conversation_for(self, account, info):
        """The conversation (as superuser) that the current user sends ``info``'s customer a
        message in, started if needed, and why not (a translated reason, or False).

        A user only writes into conversations they may read: another salesperson's
        conversation with this customer is not theirs to answer, whichever document they
        start from (lead, contact or conversation)."""
        conversation = info["conversation"]
        if not conversation and info["number"]:
            conversation = (
                self.env["crm.whatsapp.conversation"]
                .sudo()
                ._find_or_create(account, wa_id=info["number"], partner=info["partner"] or None, user=info["user"])
            )
        if not conversation:
            return conversation, _("This recipient has no WhatsApp number.")
        if info["lead"] and not conversation.lead_id:
            conversation.lead_id = info["lead"]
        if not self.env.su and not conversation.with_env(self.env).has_access("read"):
            return conversation.browse(), _(
                "%(customer)s talks on WhatsApp with %(user)s: only they or a manager can write in that conversation.",
                customer=conversation.display_name,
                user=conversation.user_id.name or _("another team"),
            )
        return conversation, False

    def _notify_get_recipients(self, message, msg_vals=False, **kwargs):
        # a customer's WhatsApp message is a chat: the live push (crm_whatsapp_conversation_live.py)
        # shows it to the colleagues concerned, followers included; Odoo's notifications would
        # e-mail it, or push it a second time into Discuss' inbox, and send copies outside
        if self.env.context.get("whatsapp_crm_chat"):
            return []
        return super()._notify_get_recipients(message, msg_vals, **kwargs)

    def notify_cancel_by_type(self, notification_type):
        """The failure systray's "discard" of WhatsApp failures, as for e-mails."""
        super().notify_cancel_by_type(notification_type)
        if notification_type == "whatsapp_crm":
            self._notify_cancel_by_type_generic(notification_type)
        return True
