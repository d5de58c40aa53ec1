"""Video: FFmpeg-backed probing, decoding and encoding, the overlapped restore pipeline, resume.

Public entry points: :func:`engine.video.probe.probe`, :func:`engine.video.restore.restore_video`,
:func:`engine.video.preview.preview_frame`.
"""
