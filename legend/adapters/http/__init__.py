"""The Litestar edge: WebSocket transport, REST API and static dashboard."""
