"""twilio_e2ee: end-to-end encrypted Twilio chat, wire-compatible with Virgil E3Kit."""

from twilio_e2ee.errors import E2EEError

__version__ = "0.1.0"
__all__ = ["E2EEError", "__version__"]
