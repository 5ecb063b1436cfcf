"""twilio_e2ee: end-to-end encrypted Twilio chat, wire-compatible with Virgil E3Kit."""

from twilio_e2ee.errors import E2EEError

__version__ = "0.1.0"

# The front door (E3Kit's EThree), imported after __version__, which the HTTP clients use.
from twilio_e2ee.ethree import EThree
from twilio_e2ee.ethree_async import AsyncEThree

__all__ = ["AsyncEThree", "E2EEError", "EThree", "__version__"]
