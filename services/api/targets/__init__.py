"""Targets: a value per rep or team, metric and period, that attainment metrics measure against."""
