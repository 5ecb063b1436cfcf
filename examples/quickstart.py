"""The whole flow of Virgil's "End-to-End Encryption for Twilio" guide, offline, in one script.

Run: .venv/bin/python examples/quickstart.py
Against real services, replace the OfflineStack URLs with yours (see notebooks/10_real_services).
"""

from mock_services.stack import OfflineStack
from twilio_e2ee import EThree
from twilio_e2ee.backend.client import BackendClient
from twilio_e2ee.chat import EncryptedConversation, create_conversation
from twilio_e2ee.twilio_http import twilio_rest_client

with OfflineStack() as stack:  # mock Cards + Keyknox, mock Twilio, token backend on loopback
    tw = stack.credentials.twilio
    twilio = twilio_rest_client(tw.account_sid, tw.auth_token, base_url=stack.twilio_url)

    def user(identity: str) -> EThree:
        """Sign up at the token backend, then E3Kit's initialize + register."""
        backend = BackendClient(stack.backend_url)
        backend.signup(identity, f"{identity}'s long passphrase")
        ethree = EThree(
            backend.fetch_virgil_jwt,  # E3Kit's tokenCallback
            api_url=stack.cards_url,  # E3Kit's apiUrl (Virgil's by default)
            cards_service_public_key=stack.cards_service_public_key,
        )
        ethree.register()  # a key pair, and its public key on a signed card
        return ethree

    alice, bob = user("alice"), user("bob")
    sid = create_conversation(twilio, ["alice", "bob"])
    EncryptedConversation.from_ethree(twilio, alice, sid).send("Hi Bob, the door code is 4711")

    for message in EncryptedConversation.from_ethree(twilio, bob, sid).history():
        print(f"bob reads: {message.author}: {message.text}")  # decrypted, verified

    posted = stack.twilio.journal.filter(method="POST", path_contains="/Messages")
    print(f"twilio saw: {posted[-1].request['Body'][:48]}...")  # base64 ciphertext only
