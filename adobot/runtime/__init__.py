"""Bot files, the runner and the command line."""
