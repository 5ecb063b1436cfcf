"""twilio_e2ee.notebook."""
