"""twilio_e2ee.backend."""
