"""Frame seeds the evaluation keeps for itself, so that no training folder can contain its frames.

``engine.evaluate`` draws its held-out frames from these seeds (cels, photographs for choosing a
recipe or checkpoint, photographs for the final measurement); ``python -m engine.synth.frames``
refuses to write training frames from them.
"""

EVALUATION_SEEDS = range(900_000, 1_000_000)
CEL_SEED = 900_000  # the cel frames of every evaluation so far
PHOTO_VALIDATION_SEED = 910_000  # photographic frames for choosing recipe, mix and checkpoint
PHOTO_TEST_SEED = 920_000  # photographic frames measured once, at the end
BW_VALIDATION_SEED = 930_000  # black-and-white frames for choosing
BW_TEST_SEED = 940_000  # black-and-white frames measured once, at the end
