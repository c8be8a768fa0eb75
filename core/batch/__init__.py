"""Folders of photos into results: the local engine (`engine`), which files (`folders`), where
rows go (`output`, `parts`, `spreadsheet`), the summary (`totals`), the settings (`settings`) and
the same on a Ray cluster (`ray`)."""
