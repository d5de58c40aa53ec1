"""Archivist's engine: everything that computes (models, inference, degrader, video, training, queue).

The engine never imports textual, rich or archivist_tui; the command line and the TUI are faces over it.
Heavy libraries (torch, av, cv2) are imported inside the modules that need them, never here.
"""

__version__ = "0.1.0"
