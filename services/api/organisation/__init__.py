"""The organisation's settings as pages and apps need them: zone, week, working days, currency,
language and formats, and what windows are called."""
