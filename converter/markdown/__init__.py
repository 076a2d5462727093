"""Markdown renderings of the reports: one conversion (report.py) and many models (index.py).

They only read the data (converter.report.Report, converter.validate's verdicts); every value
that may come from the repository is escaped with converter.escape.
"""
