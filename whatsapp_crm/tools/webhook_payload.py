"""Reading Meta's webhook payloads: pure functions, no ORM."""

import hashlib
import json
import mimetypes
import re
from datetime import datetime, timezone

from odoo.tools.translate import LazyTranslate

from .phone import wa_digits, wa_id_variants

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


MAX_ID_LENGTH = 128  # Meta's message ids (wamid.…) and user ids are far shorter
MAX_WA_ID_DIGITS = 15  # E.164
INT_LIMIT = 2**63 - 1  # larger integers are kept as text (PostgreSQL's bigint and jsonb limits)
INT4_LIMIT = 2**31 - 1
ITEM_LISTS = ("messages", "statuses", "errors", "calls", "user_preferences", "message_echoes", "state_sync")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: PostgreSQL refuses them
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class InvalidPayload(ValueError):
    """The body is not a WhatsApp webhook payload."""


class MalformedPart(ValueError):
    """A part of a payload has a shape no retry can fix: noted on its event and ignored."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads(text):
    """JSON of a webhook body, refusing ``NaN`` and ``Infinity`` (not JSON, and not storable),
    with what PostgreSQL cannot store cleaned: see :func:`clean`."""
    return clean(json.loads(text, parse_constant=_refuse_constant))


def clean(value):
    """``value`` with NUL characters and lone surrogates replaced by U+FFFD in every string and
    key, and integers too large for PostgreSQL kept as text."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_LIMIT:
        return str(value)
    return value


def int_code(value):
    """An error code for an integer column: the code, or 0 if it is not an integer in range."""
    try:
        code = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return code if -INT4_LIMIT <= code <= INT4_LIMIT else 0


def loggable(value, limit=64):
    """A value from a request as it may appear in a log line: printable ASCII, shortened; never
    a newline that would forge a log line."""
    text = value if isinstance(value, str) else str(value)
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else f"{text[:limit]}…"


def payload_hash(raw):
    return hashlib.sha256(raw).hexdigest()


def parse_payload(raw):
    """Decode a raw webhook body; raise :class:`InvalidPayload` unless it is a WhatsApp envelope."""
    if len(raw or b"") > MAX_PAYLOAD_BYTES:
        raise InvalidPayload("too large")
    try:
        # Meta sends UTF-8; json.loads() would also accept UTF-16/32 bytes that cannot be stored as such
        payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw, parse_constant=_refuse_constant)
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
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = (change.get("value") or {}) if isinstance(change, dict) else None
            if isinstance(value, dict):
                yield entry.get("id"), change.get("field"), value


def split_change(value):
    """Yield ``(label, value)`` for each item of a change's lists (a message, a status...): a
    value holding that item alone, beside the change's other keys (metadata, contacts), to be
    applied on its own. A part of the wrong shape is yielded as a :class:`MalformedPart`
    instead; malformed ``contacts`` are dropped (the messages name their sender anyway).
    A change without item lists (template, account updates) is one item."""
    shared = {key: item for key, item in value.items() if key not in ITEM_LISTS}
    contacts = shared.get("contacts")
    if contacts is not None and not (isinstance(contacts, list) and all(isinstance(c, dict) for c in contacts)):
        yield "contacts", MalformedPart("contacts is not a list of objects")
        shared["contacts"] = []
    lists = [key for key in ITEM_LISTS if key in value]
    if not lists:
        yield "change", shared
    for key in lists:
        items = value[key]
        if not isinstance(items, list):
            yield key, MalformedPart(f"{key} is not a list")
            continue
        for index, item in enumerate(items):
            label = f"{key}[{index}]"
            if not isinstance(item, dict):
                yield label, MalformedPart("not an object")
                continue
            if isinstance(item.get("id"), str):
                label = f"{label} {loggable(item['id'], MAX_ID_LENGTH)}"
            yield label, {**shared, key: [item]}


def check_id(value, what="id"):
    """A Meta id as text; raise :class:`MalformedPart` if it is missing, not text or too long."""
    if not isinstance(value, str) or not value:
        raise MalformedPart(f"{what} missing or not text")
    if len(value) > MAX_ID_LENGTH:
        raise MalformedPart(f"{what} longer than {MAX_ID_LENGTH} characters")
    return value


def check_wa_id(value):
    """The digits of a customer number; raise :class:`MalformedPart` unless it has 1 to 15 digits
    (Meta's documentation placeholders such as ``<WHATSAPP_USER_PHONE_NUMBER>`` have none)."""
    digits = wa_digits(value if isinstance(value, str) else str(value or ""))
    if not digits or len(digits) > MAX_WA_ID_DIGITS:
        raise MalformedPart(f"{loggable(value)} is not a phone number")
    return digits


# What reading a message expects of its parts (Meta's shapes): anything else is malformed.
MESSAGE_SHAPES = {"context": dict, "referral": dict, "errors": list, "contacts": list, "text": dict}


def check_shape(message):
    """Raise :class:`MalformedPart` if a part of an inbound message does not have Meta's shape."""
    for key, kind in MESSAGE_SHAPES.items():
        if message.get(key) is not None and not isinstance(message[key], kind):
            raise MalformedPart(f"{key} is not {'an object' if kind is dict else 'a list'}")
    for key in ("errors", "contacts"):
        if not all(isinstance(item, dict) for item in message.get(key) or []):
            raise MalformedPart(f"{key} holds something else than objects")
    for key in ("from", "from_user_id", "timestamp", "type"):
        if message.get(key) is not None and not isinstance(message[key], str):
            raise MalformedPart(f"{key} is not text")


def _customer(number, user_id=None):
    digits = wa_digits(number) if isinstance(number, str) else ""
    if digits and len(digits) <= MAX_WA_ID_DIGITS:
        return min(wa_id_variants(digits))
    return user_id if isinstance(user_id, str) and user_id else None


def item_customer(key, item):
    """The customer of one item of a change's list ``key`` (a number in its shortest spelling,
    else a user id), or None."""
    if not isinstance(item, dict):
        return None
    if key in ("messages", "user_preferences"):
        return _customer(item.get("from") or item.get("wa_id"), item.get("from_user_id"))
    if key == "statuses":
        return _customer(item.get("recipient_id"), item.get("recipient_user_id"))
    if key == "calls":
        inbound = item.get("direction", "USER_INITIATED") == "USER_INITIATED"
        return _customer(item.get("from") if inbound else item.get("to"))
    if key == "message_echoes":
        return _customer(item.get("to"))
    if key == "state_sync":
        contact = item.get("contact")
        return _customer(contact.get("phone_number")) if isinstance(contact, dict) else None
    return None


def value_customer(value):
    """The customer of a change's value holding one item (see :func:`split_change`), or None."""
    for key in ITEM_LISTS:
        items = value.get(key)
        if isinstance(items, list) and items:
            return item_customer(key, items[0])
    return None


def customer_keys(payload):
    """The customers a payload is about."""
    keys = set()
    for _waba, _field, value in iter_changes(payload):
        for key in ITEM_LISTS:
            items = value.get(key)
            for item in items if isinstance(items, list) else []:
                if customer := item_customer(key, item):
                    keys.add(customer)
    return keys


def lane_key(payload):
    """What chooses a payload's processing lane: its first customer, else its first number of ours."""
    keys = customer_keys(payload)
    if keys:
        return min(keys)
    phone_ids, waba_ids = account_keys(payload)
    return min(phone_ids or waba_ids or {""})


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
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    username = contact.get("username") if isinstance(contact.get("username"), str) else None
    profile_name = profile.get("name") if isinstance(profile.get("name"), str) else None
    return wa_id, user_id, profile_name or username, username


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
