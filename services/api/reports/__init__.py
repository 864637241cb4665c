"""Reports: one row per rep or team with the chosen metrics, in JSON, CSV or an Excel workbook."""
