"""Meta's message templates as plain data: read a template of ``message_templates``, write the
components of a creation request and of a send. No ORM here."""

import re

PLACEHOLDER = re.compile(r"{{\s*([\w.]+)\s*}}")

# Meta's template statuses (``status`` of message_templates, ``event`` of status webhooks)
STATUSES = {
    "APPROVED": "approved",
    "REINSTATED": "approved",
    "PENDING": "pending",
    "IN_APPEAL": "in_appeal",
    "REJECTED": "rejected",
    "PAUSED": "paused",
    "FLAGGED": "flagged",
    "DISABLED": "disabled",
    "LIMIT_EXCEEDED": "limit_exceeded",
    "PENDING_DELETION": "pending_deletion",
    "DELETED": "deleted",
    "ARCHIVED": "archived",
}
CATEGORIES = ("marketing", "utility", "authentication")
QUALITIES = ("green", "yellow", "red")
HEADER_MEDIA = ("image", "video", "document")
BUTTON_TYPES = {"QUICK_REPLY": "quick_reply", "URL": "url", "PHONE_NUMBER": "phone_number", "COPY_CODE": "copy_code"}


def placeholders(text):
    """The placeholders of a text, in order, once each: ``["1", "2"]`` or ``["first_name"]``."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


def ordered(names):
    """Positional placeholders sorted by number, named ones in their order of appearance."""
    if names and all(name.isdigit() for name in names):
        return sorted(names, key=int)
    return list(names)


def status_of(meta_status):
    return STATUSES.get((meta_status or "").upper())


def parse_template(data):
    """Values of a template of ``GET /{waba}/message_templates``:

    ``{wa_template_id, name, language, category, status, rejection_reason, quality_score,
    parameter_format, header_type, header_text, body, footer, buttons: [...], examples: {key: text}}``
    where ``examples`` maps a variable key (see :func:`variable_key`) to Meta's example value.
    """
    values = {
        "wa_template_id": str(data.get("id") or ""),
        "name": data.get("name"),
        "language": data.get("language"),
        "category": (data.get("category") or "").lower()
        if (data.get("category") or "").lower() in CATEGORIES
        else None,
        "status": status_of(data.get("status")) or "pending",
        "rejection_reason": data.get("rejected_reason") if data.get("rejected_reason") not in (None, "NONE") else "",
        "quality_score": ((data.get("quality_score") or {}).get("score") or "").lower() or "unknown",
        "parameter_format": (data.get("parameter_format") or "positional").lower(),
        "header_type": "none",
        "header_text": False,
        "body": "",
        "footer": False,
        "buttons": [],
        "examples": {},
    }
    if values["quality_score"] not in QUALITIES:
        values["quality_score"] = "unknown"
    if values["parameter_format"] not in ("positional", "named"):
        values["parameter_format"] = "positional"
    examples = values["examples"]
    for component in data.get("components") or []:
        kind = (component.get("type") or "").upper()
        example = component.get("example") or {}
        if kind == "HEADER":
            header_format = (component.get("format") or "TEXT").lower()
            values["header_type"] = header_format if header_format in (*HEADER_MEDIA, "text", "location") else "none"
            if header_format == "text":
                values["header_text"] = component.get("text") or ""
                _read_examples(examples, "header", placeholders(values["header_text"]), example, "header")
        elif kind == "BODY":
            values["body"] = component.get("text") or ""
            _read_examples(examples, "body", placeholders(values["body"]), example, "body")
        elif kind == "FOOTER":
            values["footer"] = component.get("text") or False
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                button_type = BUTTON_TYPES.get((button.get("type") or "").upper())
                if not button_type:
                    continue
                url = button.get("url") or False
                values["buttons"].append(
                    {
                        "button_type": button_type,
                        "text": button.get("text") or "",
                        "url": url,
                        "phone_number": button.get("phone_number") or False,
                        "example": (button.get("example") or [""])[0] if button_type != "url" else False,
                    }
                )
                if button_type == "url" and placeholders(url):
                    sample = (button.get("example") or [""])[0]
                    examples[variable_key("button", placeholders(url)[0], index)] = _url_suffix(url, sample)
    return values


def _url_suffix(url, sample):
    """Meta's URL button example is the full URL; the variable is what replaces ``{{1}}``."""
    prefix = PLACEHOLDER.split(url or "")[0]
    return sample[len(prefix) :] if sample and sample.startswith(prefix) else sample or ""


def _read_examples(examples, component, names, example, meta_prefix):
    named = example.get(f"{meta_prefix}_text_named_params")
    if named:
        for param in named:
            examples[variable_key(component, param.get("param_name"))] = param.get("example") or ""
        return
    positional = example.get(f"{meta_prefix}_text") or []
    if positional and isinstance(positional[0], list):  # body_text: [["a", "b"]]
        positional = positional[0]
    for name, sample in zip(ordered(names), positional, strict=False):
        examples[variable_key(component, name)] = sample


def variable_key(component, placeholder, button_index=None):
    """Key of a variable's value in a message's ``template_parameters``: the placeholder itself
    for the body, ``header:1`` for the header, ``button:0:1`` for the first button's URL."""
    if component == "header":
        return f"header:{placeholder}"
    if component == "button":
        return f"button:{button_index}:{placeholder}"
    return str(placeholder)


def _text_parameters(names, values, component, named, button_index=None):
    parameters = []
    for name in ordered(names):
        parameter = {"type": "text", "text": values.get(variable_key(component, name, button_index), "")}
        if named:
            parameter["parameter_name"] = name
        parameters.append(parameter)
    return parameters


def _text_example(names, values, component, named, meta_prefix):
    """The ``example`` of a creation request for a text with placeholders."""
    if not names:
        return None
    if named:
        return {
            f"{meta_prefix}_text_named_params": [
                {"param_name": name, "example": values.get(variable_key(component, name), "")} for name in names
            ]
        }
    samples = [values.get(variable_key(component, name), "") for name in ordered(names)]
    return {f"{meta_prefix}_text": [samples] if component == "body" else samples}


def creation_components(template, examples, header_handle=None):
    """The ``components`` of a creation (or edit) request.

    :param template: dict with ``parameter_format, header_type, header_text, body, footer,
        buttons`` (as :func:`parse_template` returns)
    :param examples: ``{variable key: example text}``
    :param header_handle: the uploaded example file of a media header
    """
    named = template.get("parameter_format") == "named"
    components = []
    header_type = template.get("header_type") or "none"
    if header_type == "text":
        header = {"type": "HEADER", "format": "TEXT", "text": template.get("header_text") or ""}
        example = _text_example(placeholders(header["text"]), examples, "header", named, "header")
        if example:
            header["example"] = example
        components.append(header)
    elif header_type in (*HEADER_MEDIA, "location"):
        header = {"type": "HEADER", "format": header_type.upper()}
        if header_handle:
            header["example"] = {"header_handle": [header_handle]}
        components.append(header)
    body = {"type": "BODY", "text": template.get("body") or ""}
    example = _text_example(placeholders(body["text"]), examples, "body", named, "body")
    if example:
        body["example"] = example
    components.append(body)
    if template.get("footer"):
        components.append({"type": "FOOTER", "text": template["footer"]})
    buttons = []
    for index, button in enumerate(template.get("buttons") or []):
        kind = button["button_type"]
        meta = {"type": kind.upper(), "text": button.get("text") or ""}
        if kind == "url":
            meta["url"] = button.get("url") or ""
            names = placeholders(meta["url"])
            if names:
                suffix = examples.get(variable_key("button", names[0], index), "")
                meta["example"] = [PLACEHOLDER.sub(suffix, meta["url"])]
        elif kind == "phone_number":
            meta["phone_number"] = button.get("phone_number") or ""
        elif kind == "copy_code":
            meta.pop("text")  # Meta names the button itself
            meta["example"] = button.get("example") or ""
        buttons.append(meta)
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return components


def send_components(template, values, header_media=None, location=None):
    """The ``components`` of a template message.

    :param template: as for :func:`creation_components`
    :param values: ``{variable key: text}`` (the message's ``template_parameters``)
    :param header_media: ``{"link": ...}`` or ``{"id": ...}`` of a media header
    :param location: ``{latitude, longitude, name, address}`` of a location header
    """
    named = template.get("parameter_format") == "named"
    components = []
    header_type = template.get("header_type") or "none"
    if header_type == "text":
        parameters = _text_parameters(placeholders(template.get("header_text")), values, "header", named)
        if parameters:
            components.append({"type": "header", "parameters": parameters})
    elif header_type in HEADER_MEDIA and header_media:
        components.append({"type": "header", "parameters": [{"type": header_type, header_type: header_media}]})
    elif header_type == "location" and location:
        components.append({"type": "header", "parameters": [{"type": "location", "location": location}]})
    parameters = _text_parameters(placeholders(template.get("body")), values, "body", named)
    if parameters:
        components.append({"type": "body", "parameters": parameters})
    for index, button in enumerate(template.get("buttons") or []):
        if button["button_type"] == "url" and placeholders(button.get("url")):
            name = placeholders(button["url"])[0]
            text = values.get(variable_key("button", name, index), "")
            components.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": str(index),
                    "parameters": [{"type": "text", "text": text}],
                }
            )
        elif button["button_type"] == "copy_code":
            code = values.get(variable_key("button", "code", index)) or button.get("example") or ""
            components.append(
                {
                    "type": "button",
                    "sub_type": "copy_code",
                    "index": str(index),
                    "parameters": [{"type": "coupon_code", "coupon_code": code}],
                }
            )
    return components


def fill(text, values, component="body", button_index=None):
    """A text with its placeholders replaced by their values (unknown ones kept)."""
    return PLACEHOLDER.sub(
        lambda match: values.get(variable_key(component, match.group(1), button_index), match.group(0)), text or ""
    )
