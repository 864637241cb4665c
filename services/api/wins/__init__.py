"""Deals won in a window, from the data: the wallboard's ticker (whatever alerts exist)."""
