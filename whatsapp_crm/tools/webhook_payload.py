"""Reading Meta's webhook payloads: pure functions, no ORM."""

import json
import mimetypes
from datetime import datetime, timezone

from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)

WHATSAPP_OBJECT = "whatsapp_business_account"
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # Meta sends at most 3 MB
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
MEDIA_LABELS = {
    "image": _lt("Image"),
    "audio": _lt("Audio"),
    "voice": _lt("Voice message"),
    "video": _lt("Video"),
    "document": _lt("Document"),
    "sticker": _lt("Sticker"),
}
# Extensions mimetypes.guess_extension() does not know or gets wrong for WhatsApp media.
EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/amr": ".amr",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "image/webp": ".webp",
    "image/jpeg": ".jpg",
    "video/3gpp": ".3gp",
}


class InvalidPayload(ValueError):
    """The body is not a WhatsApp webhook payload."""


def parse_payload(raw):
    """Decode a raw webhook body; raise :class:`InvalidPayload` unless it is a WhatsApp envelope."""
    if len(raw or b"") > MAX_PAYLOAD_BYTES:
        raise InvalidPayload("too large")
    try:
        # Meta sends UTF-8; json.loads() would also accept UTF-16/32 bytes that cannot be stored as such
        payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidPayload("not JSON") from exc
    if not isinstance(payload, dict) or payload.get("object") != WHATSAPP_OBJECT:
        raise InvalidPayload("not a WhatsApp Business Account payload")
    entries = payload.get("entry")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidPayload("no entry list")
    return payload


def iter_changes(payload):
    """Yield ``(waba_id, field, value)`` for every change of the payload."""
    for entry in payload.get("entry") or []:
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else []:
            value = (change.get("value") or {}) if isinstance(change, dict) else None
            if isinstance(value, dict):
                yield entry.get("id"), change.get("field"), value


def metadata(value):
    """The ``metadata`` of a change's value, ``{}`` when missing or malformed."""
    meta = value.get("metadata")
    return meta if isinstance(meta, dict) else {}


def account_keys(payload):
    """``(phone_number_ids, waba_ids)`` named by the payload."""
    phone_ids, waba_ids = set(), set()
    for waba_id, _field, value in iter_changes(payload):
        if waba_id:
            waba_ids.add(str(waba_id))
        phone_id = metadata(value).get("phone_number_id")
        if phone_id:
            phone_ids.add(str(phone_id))
    for entry in payload.get("entry") or []:
        if entry.get("id"):
            waba_ids.add(str(entry["id"]))
    return phone_ids, waba_ids


def to_datetime(timestamp):
    """Naive UTC datetime of Meta's unix timestamp string, or None."""
    try:
        return datetime.fromtimestamp(int(timestamp), tz=timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def sender(message, contacts):
    """``(wa_id, user_id, profile_name, username)`` of an inbound message's author."""
    wa_id = message.get("from") or None
    user_id = message.get("from_user_id") or None
    contact = next(
        (c for c in contacts or [] if (wa_id and c.get("wa_id") == wa_id) or (user_id and c.get("user_id") == user_id)),
        (contacts or [{}])[0] if len(contacts or []) == 1 else {},
    )
    wa_id = wa_id or contact.get("wa_id") or None
    user_id = user_id or contact.get("user_id") or None
    profile_name = (contact.get("profile") or {}).get("name") or contact.get("username") or None
    return wa_id, user_id, profile_name, contact.get("username")


def media_filename(kind, media, mimetype=None):
    """File name of a media: the document's own, else the type and an extension of its mimetype."""
    if media.get("filename"):
        return media["filename"]
    mimetype = (mimetype or media.get("mime_type") or "").split(";")[0].strip()
    extension = EXTENSIONS.get(mimetype) or mimetypes.guess_extension(mimetype) or ""
    return f"{kind}-{media.get('id') or 'media'}{extension}"


def _location_text(location):
    where = ", ".join(part for part in (location.get("name"), location.get("address")) if part)
    coordinates = f"({location.get('latitude')}, {location.get('longitude')})"
    text = f"{where} {coordinates}" if where else coordinates
    return f"{text} {location['url']}" if location.get("url") else text


def _contacts_text(contacts):
    lines = []
    for contact in contacts or []:
        name = (contact.get("name") or {}).get("formatted_name") or (contact.get("name") or {}).get("first_name")
        phones = ", ".join(p.get("phone") or p.get("wa_id") or "" for p in contact.get("phones") or [])
        lines.append(": ".join(part for part in (name, phones) if part))
    return "\n".join(lines)


def _interactive_text(interactive):
    kind = interactive.get("type")
    reply = interactive.get(kind) or {}
    if kind == "nfm_reply":
        return reply.get("body") or reply.get("name") or reply.get("response_json") or ""
    parts = [reply.get("title"), reply.get("description")]
    return " - ".join(part for part in parts if part)


def _order_text(order):
    lines = [order.get("text") or ""]
    for item in order.get("product_items") or []:
        lines.append(
            f"{item.get('quantity', 1)} x {item.get('product_retailer_id')} "
            f"({item.get('item_price')} {item.get('currency') or ''})".rstrip()
        )
    return "\n".join(line for line in lines if line)


def errors_text(errors):
    return "\n".join(
        f"[{error.get('code')}] {error.get('title') or error.get('message') or ''} "
        f"{(error.get('error_data') or {}).get('details') or ''}".strip()
        for error in errors or []
    )


def message_body(message, lang="en_US"):
    """Human-readable text of an inbound message of any type, labels in ``lang``."""
    kind = message.get("type")
    content = message.get(kind) if isinstance(message.get(kind), (dict, list)) else {}
    if kind == "text":
        return content.get("body") or ""
    if kind in MEDIA_KINDS:
        label = MEDIA_LABELS["voice" if kind == "audio" and content.get("voice") else kind]._translate(lang)
        detail = content.get("caption") or content.get("filename")
        return f"{label}: {detail}" if detail else label
    if kind == "location":
        return _location_text(content)
    if kind == "contacts":
        return _contacts_text(content)
    if kind == "interactive":
        return _interactive_text(content)
    if kind == "button":
        return content.get("text") or content.get("payload") or ""
    if kind == "reaction":
        return content.get("emoji") or _lt("(reaction removed)")._translate(lang)
    if kind == "order":
        return _order_text(content)
    if kind == "system":
        return content.get("body") or content.get("type") or ""
    if kind == "edit":
        edited = dict(content.get("message") or {})
        edited.setdefault("type", next((key for key in edited if key not in ("context", "type")), None))
        return message_body(edited, lang)
    if kind == "revoke":
        return _lt("(message deleted)")._translate(lang)
    return errors_text(message.get("errors")) or _lt("(unsupported message)")._translate(lang)


def original_wamid(message):
    """The wamid a reaction, edit or revoke refers to."""
    kind = message.get("type")
    content = message.get(kind) if isinstance(message.get(kind), dict) else {}
    return content.get("message_id") or content.get("original_message_id") or None
