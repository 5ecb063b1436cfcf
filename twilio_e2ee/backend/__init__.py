"""The token backend: Virgil JWTs and Twilio access tokens behind real authentication.

``create_backend_app(BackendConfig(...))`` is the Starlette app; ``python -m twilio_e2ee.backend``
serves it; :class:`~twilio_e2ee.backend.client.BackendClient` talks to it.
"""

from twilio_e2ee.backend.app import Backend, create_backend_app
from twilio_e2ee.backend.config import BackendConfig

__all__ = ["Backend", "BackendConfig", "create_backend_app"]
