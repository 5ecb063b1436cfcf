"""twilio_e2ee.cards."""
