"""The actions a bot can use: one module each (Inputs, Outputs, run, ACTION)."""
