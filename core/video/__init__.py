"""Faces over time: tracking faces across frames (`tracking`) and live video (`live`)."""
