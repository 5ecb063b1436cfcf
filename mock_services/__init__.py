"""Mock Virgil (Cards + Keyknox) and Twilio Conversations services, on loopback, for offline use."""
