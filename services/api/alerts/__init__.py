"""Alerts: their definitions (``/v1/alerts``), the notifications they raised with their
deliveries (``/v1/notifications``), and the live stream of notifications for wallboards."""
