"""Where tokens come from: the vault, a bot variable, or an insecure string; and the Secret type."""
