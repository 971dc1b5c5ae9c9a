"""dapt."""
