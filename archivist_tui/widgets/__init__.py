"""Widgets shared by the screens: header line, inline image, chart, progress cells."""
