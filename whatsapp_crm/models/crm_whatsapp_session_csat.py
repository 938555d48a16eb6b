from datetime import datetime, timedelta

from odoo import api, fields, models

from .crm_whatsapp_session import SURVEYED_STATES

CSAT_VALUES = (5, 3, 1)
# The customer's first text within this delay after their rating is their comment.
COMMENT_DELAY = timedelta(hours=1)


class CrmWhatsappSession(models.Model):
    """The satisfaction survey of a session: asked once when it closes, answered by reply buttons.

    Ratings are ``rating.rating`` records (``rating.mixin``): 5 good, 3 okay, 1 bad.
    """

    _inherit = "crm.whatsapp.session"

    csat_answered_at = fields.Datetime("Rated", readonly=True)

    # ------------------------------------------------------------
    # Asking
    # ------------------------------------------------------------

    def _csat_request(self):
        """Ask each closed, answered session once: reply buttons inside the window, else the
        account's approved template, else nothing (never free text outside the window)."""
        super()._csat_request()
        asked = self.browse()
        for session in self.filtered(
            lambda s: s.csat_state == "none" and s.account_id.csat_enabled and s.first_response_at and s.partner_id
        ):
            values = session._csat_question_values()
            message = session._csat_send(values) if values else None
            if not message or message.state in ("refused", "failed"):
                session.csat_state = "skipped"
                continue
            session._rating_get_access_token()  # the pending rating.rating
            session.write(
                {"csat_state": "asked", "csat_asked_at": fields.Datetime.now(), "csat_message_id": message.id}
            )
            asked |= session
        return asked

    def _csat_account(self):
        """The account, reading the wording in the customer's language."""
        self.ensure_one()
        return self.account_id.with_context(lang=self.partner_id.lang or self.env.lang)

    def _csat_question_values(self):
        """Arguments of the send API asking this session's rating, or None when it may not be asked."""
        self.ensure_one()
        account = self._csat_account()
        if self._csat_window_open():
            labels = account._csat_labels()
            return {"body": account.csat_question, "buttons": [labels[value] for value in CSAT_VALUES]}
        template = account.csat_template_id
        if template and template.status == "approved" and template.active:
            return {"template": template}
        return None

    def _csat_window_open(self):
        expires = self.conversation_id.window_expires_at
        return bool(expires and expires > fields.Datetime.now())

    def _csat_send(self, values):
        """Send an automatic survey message to the session's customer, through the send API and
        its policy (an opted-out customer is refused); return it."""
        self.ensure_one()
        conversation = self.conversation_id.sudo()
        messages = conversation._message_whatsapp(
            account=conversation.account_id, message_values={"is_automatic": True}, **values
        )
        return messages[:1]

    # ------------------------------------------------------------
    # Answers (from the inbound hook)
    # ------------------------------------------------------------

    @api.model
    def _csat_parse_answers(self, messages, sessions):
        """Store the ratings and comments among customer messages; return the messages they were.

        A rating comes from a reply button of our survey (the reply quotes the survey), or from
        a template's quick-reply button titled like one of the answers.

        :param sessions: the result of :meth:`_of_inbound` for these messages
        """
        inbound = messages.filtered(lambda m: m.direction == "inbound" and not m.session_id)
        if not inbound:
            return messages.browse()
        surveyed = sessions.filtered(lambda s: s.csat_state in SURVEYED_STATES).sorted(
            lambda s: (s.csat_asked_at or datetime.min, s.id), reverse=True
        )
        answers = {}  # message: the session it answered
        for message in inbound.sorted(lambda m: (m.timestamp, m.id)):
            pending = surveyed.filtered(lambda s, m=message: s.conversation_id == m.conversation_id)[:1]
            session, value = self._csat_answer_of(message, pending)
            if session:
                if session.csat_state == "asked" and value:
                    session._csat_apply(value)
                answers[message] = session
            elif pending.csat_state == "comment" and message.message_type == "text" and message.body:
                if message.timestamp <= pending.csat_answered_at + COMMENT_DELAY:
                    pending._csat_apply_comment(message.body)
                    answers[message] = pending
        for session in set(answers.values()):
            replies = messages.browse([m.id for m, s in answers.items() if s == session])
            replies.write({"session_id": session.id})
            session.inbound_count += len(replies)
        answers = messages.browse([m.id for m in answers])
        others = inbound - answers
        for conversation in answers.conversation_id - others.conversation_id:
            # an answer to the survey does not reopen the chat
            if conversation.state == "open" and not conversation.session_ids.filtered(lambda s: s.state == "open"):
                conversation.state = "closed"
        return answers

    def _csat_answer_of(self, message, pending):
        """(session, rating value) of a survey answer, ``(False, None)`` for other messages."""
        payload = message.payload or {}
        if message.message_type == "interactive":
            reply = (payload.get("interactive") or {}).get("button_reply") or {}
            button_id = str(reply.get("id") or "")
            # the send API numbers reply buttons (button_1: good...); the reply quotes our survey
            survey = message.reply_to_id
            number = button_id.removeprefix("button_")
            if survey and number.isdigit() and 1 <= int(number) <= len(CSAT_VALUES):
                session = self.search([("csat_message_id", "=", survey.id)], limit=1)
                if session and session.conversation_id == message.conversation_id:
                    return session, CSAT_VALUES[int(number) - 1]
        if message.message_type == "button" and pending.csat_state == "asked":
            text = ((payload.get("button") or {}).get("text") or "").strip().casefold()
            for value, label in pending._csat_account()._csat_labels().items():
                if label and label.strip().casefold() == text:
                    return pending, value
        return self.browse(), None

    def _csat_apply(self, value):
        self.ensure_one()
        self.rating_apply(value, token=self._rating_get_access_token())
        self.write({"csat_rating": value, "csat_state": "comment", "csat_answered_at": fields.Datetime.now()})
        question = self._csat_account().csat_comment_question
        if question and self._csat_window_open():
            self._csat_send({"body": question})

    def _csat_apply_comment(self, text):
        self.ensure_one()
        rating = self.rating_ids.filtered("consumed").sorted("id")[-1:]
        if rating:
            self.rating_apply(rating.rating, rating=rating, feedback=text)
        self.write({"csat_comment": text, "csat_state": "done"})
