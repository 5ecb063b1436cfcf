"""Chat participants for the workbench: one over the encrypting adapter, one in plaintext.

Both implement :class:`twilio_e2ee.notebook.chat.ChatParticipant`; the plaintext one exists to
show, side by side, what Twilio reads when nothing is encrypted (notebook 04).
"""

from __future__ import annotations

from typing import Any

from twilio_e2ee.chat.conversation import EncryptedConversation
from twilio_e2ee.chat.live import MessagePoller
from twilio_e2ee.errors import ChatError
from twilio_e2ee.notebook.chat import ChatLine

__all__ = ["EncryptedParticipant", "PlaintextParticipant"]


class EncryptedParticipant:
    """A user in an :class:`EncryptedConversation`: sends encrypted, shows decrypted messages."""

    def __init__(self, conversation: EncryptedConversation) -> None:
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
            if item.ok:
                text = getattr(item, "text", None)
                lines.append(ChatLine(author, text if text is not None else "<binary>"))
            else:
                reason = getattr(getattr(item, "reason", None), "value", "refused")
                lines.append(ChatLine(author, f"[{reason}] {getattr(item, 'detail', '')}", False))
        return lines


class PlaintextParticipant:
    """A user posting plain text through the official SDK: what chat looks like without E2EE."""

    def __init__(self, client: Any, conversation_sid: str, identity: str) -> None:
        if not identity:
            raise ChatError("identity must be a non-empty string")
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
