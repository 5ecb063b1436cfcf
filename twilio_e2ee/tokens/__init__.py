"""twilio_e2ee.tokens."""
