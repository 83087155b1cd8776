"""The senders of alert notifications, one per channel: webhooks (with the forgery guard), Web Push, e-mail."""
