"""WhatsApp numbers (``wa_id``): digits of an E.164 number without the ``+``."""

import re

_NON_DIGITS = re.compile(r"\D")


def wa_digits(number):
    """The digits of a number given as ``+55 11 98765-4321``, ``0055...`` or a wa_id."""
    digits = _NON_DIGITS.sub("", number or "")
    if digits.startswith("00"):
        digits = digits[2:]
    return digits


def wa_id_variants(wa_id):
    """Every spelling of one WhatsApp number, the given one first.

    WhatsApp reports some mobile numbers without the digit that the national plan added:
    Brazil 55 + DDD + 8 digits (the mobile's leading 9 dropped), Mexico 52 vs 521,
    Argentina 54 vs 549.
    """
    digits = wa_digits(wa_id)
    variants = [digits] if digits else []
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        variants.append(f"{digits[:4]}9{digits[4:]}")
    elif digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        variants.append(digits[:4] + digits[5:])
    elif digits.startswith("521") and len(digits) == 13:
        variants.append("52" + digits[3:])
    elif digits.startswith("52") and len(digits) == 12:
        variants.append("521" + digits[2:])
    elif digits.startswith("549") and len(digits) == 13:
        variants.append("54" + digits[3:])
    elif digits.startswith("54") and len(digits) == 12:
        variants.append("549" + digits[2:])
    return variants


def wa_region(wa_id):
    """ISO country code (``BE``) of a WhatsApp number, or False."""
    import phonenumbers  # noqa: PLC0415 (an external dependency only this helper needs)

    digits = wa_digits(wa_id)
    if not digits:
        return False
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(f"+{digits}")) or False
    except phonenumbers.NumberParseException:
        return False
