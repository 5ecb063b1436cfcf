"""Mock Twilio Conversations v1 (Starlette on uvicorn): REST resources, SQLite or in-memory state,
signed post-event webhooks to loopback targets, Twilio's limits and errors, and fault injection.

Serve ``MockTwilioService(credentials).app`` with :class:`twilio_e2ee.servers.ServerThread` and
point the official SDK at it with :func:`twilio_e2ee.twilio_http.twilio_rest_client`.
"""

from mock_services.twilio.app import MockTwilioService
from mock_services.twilio.errors import TwilioApiError
from mock_services.twilio.faults import Fault, FaultInjector
from mock_services.twilio.formats import TwilioLimits
from mock_services.twilio.webhooks import WebhookDelivery, twilio_signature

__all__ = [
    "Fault",
    "FaultInjector",
    "MockTwilioService",
    "TwilioApiError",
    "TwilioLimits",
    "WebhookDelivery",
    "twilio_signature",
]
