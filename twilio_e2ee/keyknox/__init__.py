"""twilio_e2ee.keyknox."""
