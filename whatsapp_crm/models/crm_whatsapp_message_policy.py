"""The one policy of outbound WhatsApp messages: may this batch be sent now?"""

from odoo import _, models
from odoo.exceptions import UserError

from .crm_whatsapp_message import (
    MAX_BUTTON_TITLE,
    MAX_BUTTONS,
    MEDIA_MAX_SIZES,
    MEDIA_TYPES,
    SENDABLE_TYPES,
    format_size,
)


class CrmWhatsappMessage(models.Model):
    _inherit = "crm.whatsapp.message"

    def _whatsapp_policy_refusals(self):
        """Why each of these outbound messages may not be sent now.

        The one place where sending is allowed or refused: the send API, the queue and the
        interactive send all ask it, when a message is queued and again when it is sent. It
        answers for the whole batch with one set of queries, whatever the batch's size.

        :return: ``{message id: (code, reason)}`` for the refused messages only. ``code`` is a
            short stable identifier (``"window"``, ``"blacklist"``, ``"marketing_opt_out"``...),
            ``reason`` a translated sentence for the user. A message keeps its first refusal.

        Extend it in your own file, with one query for the batch::

            def _whatsapp_policy_refusals(self):
                refusals = super()._whatsapp_policy_refusals()
                candidates = self.filtered(lambda m: m.id not in refusals)
                ...  # one search covering ``candidates``
                for message in capped:
                    refusals[message.id] = ("frequency_cap", self.env._("..."))
                return refusals
        """
        refusals = {}

        def refuse(messages, code, reason):
            for message in messages:
                refusals.setdefault(message.id, (code, reason))

        blacklisted = self._whatsapp_blacklisted_numbers()
        for message in self:
            conversation = message.conversation_id
            account = message.account_id
            # sudo: the token is only readable by administrators, its presence is what matters
            if account.token_invalid or not account.sudo().access_token:
                refuse(
                    message,
                    "token",
                    _("The access token of the WhatsApp account %s is invalid: update it first.", account.name),
                )
            elif not conversation.wa_id and not conversation.wa_user_id:
                refuse(message, "no_number", _("This recipient has no WhatsApp number."))
            elif conversation.account_id != account:
                refuse(message, "account", _("This conversation belongs to another WhatsApp account."))
            elif conversation.wa_id and not message._whatsapp_number_e164():
                refuse(message, "number", _("+%s is not a valid WhatsApp number.", conversation.wa_id))
            elif message._whatsapp_number_e164() in blacklisted:
                refuse(message, "blacklist", _("This number opted out of WhatsApp messages."))
            elif message.message_type not in SENDABLE_TYPES:
                refuse(message, "type", _("Messages of type %s cannot be sent.", message.message_type))
            elif message.message_type == "template":
                message._whatsapp_check_template(refuse)
            elif not conversation.can_send_free_text:
                refuse(message, "window", _("Outside the 24-hour window: choose an approved template"))
            else:
                message._whatsapp_check_content(refuse)
        return refusals

    def _whatsapp_check_template(self, refuse):
        template = self.template_id
        if template.status != "approved" or not template.active:
            refuse(self, "template_status", _("Only approved templates can be sent."))
        elif template.account_id != self.account_id:
            refuse(self, "template_account", _("This template belongs to another WhatsApp account."))
        elif set(template._placeholders()) - set(self.template_parameters or {}):
            refuse(self, "template_variables", _("The template's variables have changed: write the message again."))

    def _whatsapp_check_content(self, refuse):
        """Free-form content: buttons, media and text."""
        if self.message_type == "interactive":
            if not self.body or not self.buttons or len(self.buttons) > MAX_BUTTONS:
                refuse(
                    self,
                    "interactive",
                    _("An interactive message needs a text and one to %s reply buttons.", MAX_BUTTONS),
                )
            elif any(not b.get("title") or len(b["title"]) > MAX_BUTTON_TITLE for b in self.buttons):
                refuse(self, "interactive", _("A reply button title has 1 to %s characters.", MAX_BUTTON_TITLE))
        elif self.message_type in MEDIA_TYPES and not (self.media_id or self.attachment_ids):
            refuse(self, "media_missing", _("The media to send is missing."))
        elif self.message_type in MEDIA_TYPES and not self.media_id:
            # sudo: the size only; the file was checked readable when the message was created
            attachment = self.attachment_ids[:1].sudo()
            limit = MEDIA_MAX_SIZES[self.message_type]
            if attachment.file_size > limit:
                refuse(
                    self,
                    "media_size",
                    _(
                        "%(file)s is too large for WhatsApp: %(size)s, at most %(limit)s for this kind of file.",
                        file=attachment.name,
                        size=format_size(attachment.file_size),
                        limit=format_size(limit),
                    ),
                )
        elif self.message_type == "text" and not self.body:
            refuse(self, "empty", _("The message is empty."))

    def _whatsapp_number_e164(self):
        """The recipient's number in E.164, False for username-only users."""
        self.ensure_one()
        wa_id = self.conversation_id.wa_id
        return self._phone_format(number=f"+{wa_id}", raise_exception=False) if wa_id else False

    def _whatsapp_blacklisted_numbers(self):
        """The recipients' numbers in Odoo's phone blacklist, in one query."""
        numbers = {number for number in (m._whatsapp_number_e164() for m in self) if number}
        if not numbers:
            return set()
        # sudo: the blacklist is not readable by salespeople, only its verdict matters
        found = self.env["phone.blacklist"].sudo().search_fetch([("number", "in", list(numbers))], ["number"])
        return set(found.mapped("number"))

    def _whatsapp_check_policy(self, raise_exception=False):
        """Apply the policy to the queued outbound messages: refuse the others; return those allowed.

        :param raise_exception: raise the first refusal as a UserError (interactive sends)
        """
        queued = self.filtered(lambda m: m.direction == "outbound" and m.state == "queued")
        refusals = queued._whatsapp_policy_refusals()
        if refusals and raise_exception:
            raise UserError(next(iter(refusals.values()))[1])
        by_reason = {}
        for message in queued.filtered(lambda m: m.id in refusals):
            by_reason.setdefault(refusals[message.id][1], self.browse())
            by_reason[refusals[message.id][1]] |= message
        for reason, messages in by_reason.items():
            messages.write({"state": "refused", "error_message": reason, "next_try_at": False})
        return queued.filtered(lambda m: m.id not in refusals)
