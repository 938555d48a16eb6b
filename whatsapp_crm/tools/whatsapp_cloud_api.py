"""The one client of Meta's WhatsApp Business Cloud (Graph) API.

Every network call of the module goes through :meth:`WhatsAppCloudApi._request`,
which tests patch (see ``tests/common.py``).
"""

import logging

import requests

from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)
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
    130429: _lt("WhatsApp's throughput limit was reached; the message will be retried."),
    131056: _lt("Too many messages to this customer in a short time; the message will be retried."),
    131000: _lt("WhatsApp had an unexpected error; the message will be retried."),
    80007: _lt("The WhatsApp account's rate limit was reached; retrying later."),
}
NETWORK_ERROR_MESSAGE = _lt("WhatsApp could not be reached; the request will be retried.")
SERVER_ERROR_MESSAGE = _lt("WhatsApp answered with a server error; the request will be retried.")
UNKNOWN_ERROR_MESSAGE = _lt("WhatsApp refused the request.")


class WhatsAppApiError(Exception):
    """A failed Graph API call, parsed from Meta's error object."""

    def __init__(self, code=None, title="", details="", fbtrace_id=None, http_status=None, retryable=None):
        self.code = code
        self.title = title or ""
        self.details = details or ""
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        if retryable is None:
            retryable = code in RETRYABLE_CODES or (code is None and (http_status is None or http_status >= 500))
        self.retryable = retryable
        super().__init__(self.message)

    @property
    def message(self):
        """A translated sentence a user can act on, with Meta's own words appended."""
        if self.code in ERROR_MESSAGES:
            text = str(ERROR_MESSAGES[self.code])
        elif self.code is None and self.http_status is None:
            text = str(NETWORK_ERROR_MESSAGE)
        elif self.code is None and self.http_status >= 500:
            text = str(SERVER_ERROR_MESSAGE)
        else:
            text = str(UNKNOWN_ERROR_MESSAGE)
        meta_text = self.details or self.title
        if meta_text and meta_text not in text:
            text = f"{text} ({meta_text})"
        if self.code is not None:
            text = f"[{self.code}] {text}"
        return text

    def __str__(self):
        return self.message

    @classmethod
    def from_response(cls, response):
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        if not isinstance(error, dict):
            error = {}
        return cls(
            code=error.get("code"),
            title=error.get("message") or error.get("error_user_title") or "",
            details=(error.get("error_data") or {}).get("details", "") if isinstance(error.get("error_data"), dict) else "",
            fbtrace_id=error.get("fbtrace_id"),
            http_status=response.status_code,
            retryable=None if error.get("code") is not None else response.status_code >= 500 or response.status_code == 429,
        )


class WhatsAppCloudApi:
    """Talks to Meta's Graph API for one WhatsApp business phone number."""

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

    def __repr__(self):  # never shows the token
        return f"<WhatsAppCloudApi {self.base_url}/{self.version} phone={self.phone_number_id}>"

    def _url(self, path):
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _request(self, method, path, json=None, params=None, data=None, files=None, raw=False, timeout=None):
        """Perform one HTTP call; return the decoded JSON (or bytes if ``raw``).

        :raises WhatsAppApiError: on any HTTP, network or Meta error.
        """
        url = self._url(path)
        try:
            response = self.session.request(
                method,
                url,
                json=json,
                params=params,
                data=data,
                files=files,
                headers={"Authorization": f"Bearer {self.access_token}"},
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            _logger.info("WhatsApp API %s %s: network error %s", method, path, type(exc).__name__)
            raise WhatsAppApiError(title=type(exc).__name__, retryable=True) from exc
        if not response.ok:
            error = WhatsAppApiError.from_response(response)
            _logger.info(
                "WhatsApp API %s %s failed: HTTP %s code %s fbtrace_id %s",
                method, path, response.status_code, error.code, error.fbtrace_id,
            )
            raise error
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError as exc:
            raise WhatsAppApiError(title="Invalid JSON response", http_status=response.status_code) from exc

    # Messages
    def send_message(self, payload):
        """POST a message payload (without ``messaging_product``); return the wamid."""
        body = {"messaging_product": "whatsapp", **payload}
        result = self._request("POST", f"{self.phone_number_id}/messages", json=body)
        return result["messages"][0]["id"]

    def mark_as_read(self, wamid):
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        return self._request("POST", f"{self.phone_number_id}/messages", json=body).get("success", False)

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
        return result["id"]

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
            templates.extend(page.get("data", []))
            path, params = (page.get("paging") or {}).get("next"), None
        return templates

    def create_template(self, values):
        """Create a template; return ``{id, status, category}``."""
        return self._request("POST", f"{self.waba_id}/message_templates", json=values)

    # Phone number
    def get_phone_number(self):
        """Return the phone number's details (display number, quality, verified name, tier)."""
        fields = "display_phone_number,verified_name,quality_rating,messaging_limit_tier,code_verification_status"
        return self._request("GET", str(self.phone_number_id), params={"fields": fields})
