"""All notebook widgets in one import: chat workbench, wire view (and its rows), inspector,
progress bar."""

from twilio_e2ee.notebook.chat import ChatLine, ChatParticipant, ChatWorkbench
from twilio_e2ee.notebook.inspector import Inspector
from twilio_e2ee.notebook.progress import ProgressBar, track
from twilio_e2ee.notebook.wire import WireRow, WireView, message_row, wire_rows

__all__ = [
    "ChatLine",
    "ChatParticipant",
    "ChatWorkbench",
    "Inspector",
    "ProgressBar",
    "WireRow",
    "WireView",
    "message_row",
    "track",
    "wire_rows",
]
