"""Archivist's faces: the ``archivist`` command line (cli.py) and the Textual workstation."""
