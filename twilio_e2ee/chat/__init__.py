"""twilio_e2ee.chat."""
