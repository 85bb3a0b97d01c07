"""Runs in the control room: bots uploaded as versioned bundles, runs and their attempts, pools
and runners, and the engine that executes queued runs — a local worker pool in the control room
(the SQLite default). The rules live here; the rows in ``adobot.store``."""
