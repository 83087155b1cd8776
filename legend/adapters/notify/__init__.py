"""The senders of alert notifications (legend.ports.notifications.Sender), one adapter per channel."""
