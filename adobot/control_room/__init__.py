"""The control room: connections, API tokens, the audit log and the HTTP service."""
