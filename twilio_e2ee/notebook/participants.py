"""Chat participants for the workbench: one over the encrypting adapter, one in plaintext.

Both implement :class:`twilio_e2ee.notebook.chat.ChatParticipant`; the plaintext one exists to
show, side by side, what Twilio reads when nothing is encrypted (notebook 04).
"""

from __future__ import annotations

from typing import Any

from twilio_e2ee.chat.conversation import EncryptedConversation
from twilio_e2ee.chat.live import MessagePoller
from twilio_e2ee.chat.results import MessageFailure
from twilio_e2ee.notebook._base import NotebookError
from twilio_e2ee.notebook.chat import ChatLine

__all__ = ["EncryptedParticipant", "PlaintextParticipant"]


class EncryptedParticipant:
    """A user in an :class:`EncryptedConversation`: sends encrypted, shows decrypted messages."""

    def __init__(self, conversation: EncryptedConversation) -> None:
        if not isinstance(conversation, EncryptedConversation):
            raise NotebookError(
                "EncryptedParticipant takes an EncryptedConversation (user.conversation(sid)), "
                f"not {type(conversation).__name__}"
            )
        self.conversation = conversation
        self._poller = MessagePoller(conversation, start="beginning")

    @property
    def identity(self) -> str:
        return str(self.conversation.keys.identity)

    def send(self, text: str) -> None:
        self.conversation.send(text)

    def receive(self) -> list[ChatLine]:
        lines = []
        for item in self._poller.poll_once():
            author = item.author or "?"
            if isinstance(item, MessageFailure):
                lines.append(ChatLine(author, f"[{item.reason.value}] {item.detail}", False))
            else:
                text = item.text if item.text is not None else f"<{len(item.data)} bytes>"
                lines.append(ChatLine(author, text))
        return lines


class PlaintextParticipant:
    """A user posting plain text through the official SDK: what chat looks like without E2EE."""

    def __init__(self, client: Any, conversation_sid: str, identity: str) -> None:
        if not isinstance(identity, str) or not identity:
            raise NotebookError("identity must be a non-empty str")
        if not isinstance(conversation_sid, str) or not conversation_sid.startswith("CH"):
            raise NotebookError(f"not a conversation SID (CH…): {conversation_sid!r}")
        self.client = client
        self.sid = conversation_sid
        self._identity = identity
        self._cursor = -1

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def _messages(self) -> Any:
        return self.client.conversations.v1.conversations(self.sid).messages

    def send(self, text: str) -> None:
        self._messages.create(author=self.identity, body=text)

    def receive(self) -> list[ChatLine]:
        lines = []
        for message in self._messages.stream(order="asc", page_size=50):
            if message.index is None or int(message.index) <= self._cursor:
                continue
            self._cursor = int(message.index)
            lines.append(ChatLine(message.author or "?", message.body or ""))
        return lines
