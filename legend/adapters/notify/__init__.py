"""The senders of alert notifications behind the Sender port: Web Push, webhooks, e-mail."""
