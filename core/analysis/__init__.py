"""The face-analysis pipeline (`pipeline`: find, align, read), the one result type and its output
columns (`results`), face quality (`quality`) and drawing results on pictures (`drawing`)."""
