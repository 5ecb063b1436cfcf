"""twilio_e2ee.storage."""
