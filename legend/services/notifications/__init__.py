"""Alert delivery to the users' destinations: webhooks, Web Push, e-mail."""
