"""Running a chain of models over images and frames: precision, tiling, batching."""
