"""The one client of Meta's WhatsApp Business Cloud (Graph) API.

Every network call of the module goes through :meth:`WhatsAppCloudApi._request`,
which tests patch (see ``tests/common.py``).
"""

import logging
from urllib.parse import urlsplit

import requests
import urllib3

from odoo.tools.translate import LazyTranslate

# English where no language can be found (no user, no request): never a warning
_lt = LazyTranslate(__name__, default_lang="en_US")
_logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v25.0"
DEFAULT_TIMEOUT = (5, 30)  # (connect, read) seconds
MEDIA_TIMEOUT = (5, 120)

# Meta's error codes that a later attempt may get past.
RETRYABLE_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004, 133016}

ERROR_MESSAGES = {
    0: _lt("WhatsApp refused the access token: generate a new one in Meta's dashboard."),
    190: _lt("The access token is invalid or expired: generate a new one in Meta's dashboard."),
    3: _lt("The app lacks the permission for this call: check its WhatsApp permissions."),
    10: _lt("Permission denied: the app is not allowed to use this phone number."),
    131005: _lt("Permission denied: the app is not allowed to use this phone number."),
    100: _lt("WhatsApp rejected a parameter of the request."),
    131008: _lt("A required parameter is missing."),
    131009: _lt("A parameter value is not valid."),
    135000: _lt("WhatsApp rejected the request's parameters."),
    131021: _lt("The recipient is the sending number itself."),
    131026: _lt("The message could not be delivered: the number may not be on WhatsApp."),
    131030: _lt("This recipient is not in the test number's allowed list."),
    131031: _lt("The WhatsApp account is restricted or locked."),
    368: _lt("The WhatsApp account is temporarily blocked for policy violations."),
    131042: _lt("A payment issue blocks this WhatsApp account: check its payment method."),
    131047: _lt("Outside the 24-hour window: choose an approved template."),
    131048: _lt("Sending was limited because too many messages were marked as spam."),
    131049: _lt("Meta did not deliver this marketing message to keep engagement healthy; retry later."),
    131050: _lt("The customer stopped marketing messages from this business."),
    131051: _lt("This message type is not supported."),
    131052: _lt("The media could not be downloaded from the customer's message."),
    131053: _lt("The media could not be uploaded: check its type and size."),
    132000: _lt("The template's parameter count does not match its definition."),
    132001: _lt("The template does not exist or is not approved in this language."),
    132005: _lt("The template's text is too long once filled in."),
    132007: _lt("The template's content breaks WhatsApp's policy."),
    132012: _lt("A template parameter has the wrong format."),
    132015: _lt("The template is paused because of low quality."),
    132016: _lt("The template is disabled because of low quality."),
    133010: _lt("The phone number is not registered with the WhatsApp Cloud API."),
    130403: _lt("The customer blocked this business."),
    130429: _lt("WhatsApp's throughput limit for this number was reached."),
    131056: _lt("Too many messages to this customer in a short time (pair rate limit)."),
    131000: _lt("WhatsApp had an unexpected error."),
    80007: _lt("The WhatsApp account's rate limit was reached."),
}
# Whether a failed call is tried again is the caller's decision: these texts never promise it.
NETWORK_ERROR_MESSAGE = _lt("WhatsApp could not be reached.")
TIMEOUT_MESSAGE = _lt("WhatsApp did not answer in time.")
SERVER_ERROR_MESSAGE = _lt("WhatsApp answered with a server error.")
RATE_LIMIT_MESSAGE = _lt("WhatsApp's rate limit was reached (HTTP 429: too many requests).")
INVALID_RESPONSE_MESSAGE = _lt("WhatsApp sent an answer that could not be understood.")
UNKNOWN_ERROR_MESSAGE = _lt("WhatsApp refused the request.")


def _request_may_have_left(exc):
    """Whether the request may have reached the server before ``exc``: a read timeout, or the
    connection lost while waiting for the answer. Not when the connection could not be made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        # "Connection aborted": the request was written, the answer never came
        return isinstance(reason, urllib3.exceptions.ProtocolError)
    return False


class WhatsAppApiError(Exception):
    """A failed Graph API call, parsed from Meta's error object.

    :param code: Meta's error code (``None`` for network errors and answers without error object)
    :param title: Meta's error message, e.g. ``(#131047) Re-engagement message``
    :param details: Meta's ``error_data.details``
    :param http_status: HTTP status of the answer (``None`` when none came)
    :param retryable: whether a later attempt may succeed; deduced from ``code`` and
        ``http_status`` when not given
    :param request_sent: the request may have reached Meta although no answer came (read
        timeout, connection lost while waiting): trying again may do the thing twice
    """

    def __init__(
        self,
        code=None,
        title="",
        details="",
        fbtrace_id=None,
        http_status=None,
        retryable=None,
        timeout=False,
        request_sent=False,
    ):
        self.code = code
        self.title = title or ""
        self.details = details or ""
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.timeout = timeout
        self.request_sent = request_sent
        if retryable is None:
            retryable = self._is_retryable(code, http_status)
        self.retryable = retryable
        super().__init__(code, self.title)

    @staticmethod
    def _is_retryable(code, http_status):
        """Meta's code decides; without a (known) code, server and network errors are retryable."""
        if code in RETRYABLE_CODES:
            return True
        if code in ERROR_MESSAGES:
            return False
        return http_status is None or http_status >= 500 or http_status == 429

    @property
    def message(self):
        """:meth:`get_message` in the request's language (English outside requests)."""
        return self.get_message()

    def get_message(self, lang=""):
        """A sentence a user can act on, in ``lang`` (default: the language of the current
        request or user, else English), with Meta's own words appended."""
        if self.code in ERROR_MESSAGES:
            text = ERROR_MESSAGES[self.code]
        elif self.code is None and self.http_status is None:
            text = TIMEOUT_MESSAGE if self.timeout else NETWORK_ERROR_MESSAGE
        elif self.code is None and self.http_status >= 500:
            text = SERVER_ERROR_MESSAGE
        elif self.code is None and self.http_status < 300:
            text = INVALID_RESPONSE_MESSAGE
        elif self.http_status == 429:
            text = RATE_LIMIT_MESSAGE
        else:
            text = UNKNOWN_ERROR_MESSAGE
        text = text._translate(lang)  # without lang: the request's language, else default_lang
        meta_text = self.details or self.title
        if meta_text and meta_text not in text:
            text = f"{text} ({meta_text})"
        if self.code is not None:
            text = f"[{self.code}] {text}"
        return text

    def __str__(self):
        return self.message

    @classmethod
    def from_error(cls, error, http_status):
        """Build from Meta's ``error`` object (a dict, possibly empty)."""
        error_data = error.get("error_data")
        return cls(
            code=error.get("code"),
            title=error.get("message") or error.get("error_user_title") or "",
            details=(error_data.get("details") if isinstance(error_data, dict) else None)
            or error.get("error_user_msg")
            or "",
            fbtrace_id=error.get("fbtrace_id"),
            http_status=http_status,
        )

    @classmethod
    def from_response(cls, response):
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        return cls.from_error(error if isinstance(error, dict) else {}, response.status_code)


class WhatsAppCloudApi:
    """Talks to Meta's Graph API for one WhatsApp business phone number.

    ``base_url`` and ``version`` are settings so that a local emulator (see
    ``tests/cloud_api_emulator.py``) or a newer Graph version can be used.
    """

    def __init__(
        self,
        access_token,
        phone_number_id=None,
        waba_id=None,
        base_url=DEFAULT_BASE_URL,
        version=DEFAULT_VERSION,
        timeout=DEFAULT_TIMEOUT,
        session=None,
    ):
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.version = version or DEFAULT_VERSION
        self.timeout = timeout
        self.session = session or requests.Session()

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):  # never shows the token
        return f"<WhatsAppCloudApi {self.base_url}/{self.version} phone={self.phone_number_id}>"

    def _url(self, path):
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _request(
        self, method, path, json=None, params=None, data=None, files=None, raw=False, timeout=None, headers=None
    ):
        """Perform one HTTP call; return the decoded JSON (or bytes if ``raw``).

        :param path: a path below ``/{version}/`` or an absolute URL (pagination, media)
        :raises WhatsAppApiError: on any HTTP, network or Meta error.
        """
        url = self._url(path)
        # Meta's paging URLs carry the access token in their query: log without it.
        log_path = urlsplit(path).path or path
        try:
            response = self.session.request(
                method,
                url,
                json=json,
                params=params,
                data=data,
                files=files,
                headers={"Authorization": f"Bearer {self.access_token}", **(headers or {})},
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            _logger.info("WhatsApp API %s %s: network error %s", method, log_path, type(exc).__name__)
            raise WhatsAppApiError(
                title=type(exc).__name__,
                retryable=True,
                timeout=isinstance(exc, requests.Timeout),
                request_sent=_request_may_have_left(exc),
            ) from exc
        if not response.ok:
            error = WhatsAppApiError.from_response(response)
            _logger.info(
                "WhatsApp API %s %s failed: HTTP %s, code %s, fbtrace_id %s",
                method,
                log_path,
                response.status_code,
                error.code,
                error.fbtrace_id,
            )
            raise error
        if raw:
            return response.content
        try:
            result = response.json()
        except ValueError as exc:
            raise WhatsAppApiError(title="Invalid JSON response", http_status=response.status_code) from exc
        if not isinstance(result, dict):
            raise WhatsAppApiError(title="Unexpected JSON response", http_status=response.status_code)
        if isinstance(result.get("error"), dict):  # Graph may answer 200 with an error object
            raise WhatsAppApiError.from_error(result["error"], response.status_code)
        return result

    @staticmethod
    def _get(result, *keys):
        """``result[k1][k2]...`` (ints index lists); a malformed answer raises WhatsAppApiError."""
        try:
            for key in keys:
                result = result[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise WhatsAppApiError(title=f"Missing {'.'.join(map(str, keys))} in the answer", http_status=200) from exc
        return result

    # Messages
    def send_message(self, payload):
        """POST a message payload (``messaging_product`` optional); return the wamid."""
        body = {"messaging_product": "whatsapp", **payload}
        result = self._request("POST", f"{self.phone_number_id}/messages", json=body)
        return self._get(result, "messages", 0, "id")

    def mark_as_read(self, wamid):
        """Tell WhatsApp the customer's message was read (blue ticks); return True on success."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        return bool(self._request("POST", f"{self.phone_number_id}/messages", json=body).get("success"))

    # Media
    def upload_media(self, content, mimetype, filename):
        """Upload bytes; return Meta's media id."""
        result = self._request(
            "POST",
            f"{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mimetype},
            files={"file": (filename, content, mimetype)},
            timeout=MEDIA_TIMEOUT,
        )
        return self._get(result, "id")

    def get_media_info(self, media_id):
        """Return ``{url, mime_type, sha256, file_size, id}`` of a media id."""
        return self._request("GET", str(media_id))

    def download_media(self, url):
        """Download a media URL (from :meth:`get_media_info`) with the bearer token."""
        return self._request("GET", url, raw=True, timeout=MEDIA_TIMEOUT)

    # Templates
    def list_templates(self, limit=100):
        """Return every message template of the WABA, following the pagination."""
        templates = []
        path, params = f"{self.waba_id}/message_templates", {"limit": limit}
        while path:
            page = self._request("GET", path, params=params)
            templates.extend(page.get("data") or [])
            # ``next`` is an absolute URL that already holds the query
            path, params = (page.get("paging") or {}).get("next"), None
        return templates

    def create_template(self, values):
        """Create a template; return ``{id, status, category}``."""
        return self._request("POST", f"{self.waba_id}/message_templates", json=values)

    def edit_template(self, template_id, values):
        """Edit a template (``category``, ``components``); Meta reviews it again."""
        return bool(self._request("POST", str(template_id), json=values).get("success", True))

    def delete_template(self, name, template_id=None):
        """Delete a template: every language of ``name``, or only the one of ``template_id``."""
        params = {"name": name, **({"hsm_id": template_id} if template_id else {})}
        return bool(self._request("DELETE", f"{self.waba_id}/message_templates", params=params).get("success"))

    def upload_template_example(self, content, mimetype, filename):
        """Upload a header example with Meta's resumable upload; return the handle for ``header_handle``."""
        session = self._request(
            "POST",
            "app/uploads",
            params={"file_name": filename, "file_length": len(content), "file_type": mimetype},
        )
        result = self._request(
            "POST", str(self._get(session, "id")), data=content, headers={"file_offset": "0"}, timeout=MEDIA_TIMEOUT
        )
        return self._get(result, "h")

    # Phone number
    def get_phone_number(self):
        """Return the phone number's details (display number, quality, verified name, tier)."""
        fields = "display_phone_number,verified_name,quality_rating,messaging_limit_tier,code_verification_status"
        return self._request("GET", str(self.phone_number_id), params={"fields": fields})
