"""The control room's routes, one router per subject."""
