"""The shop listens to the payment platform's announcements (payments never imports us)."""
