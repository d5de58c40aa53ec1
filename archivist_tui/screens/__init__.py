"""The four screens, one module each with its stylesheet beside it."""
