"""The trainer: Real-ESRGAN-style training of Compact networks on synthetic film damage.

Public API::

    from engine.train import run_training, load_config, INIT_TEMPLATE
    result = run_training("my-run.yaml", name="medium-v1", resume=False, stop_at=None)

Modules: ``config`` (the validated YAML document), ``data`` (on-the-fly or paired patches),
``losses``, ``trainer`` (the loop and checkpoints), ``metrics``, ``runs`` (run directories,
pause/stop, promote).
"""

from engine.train.config import INIT_TEMPLATE, TrainConfig, config_from_dict, load_config


def run_training(config, name=None, resume=False, stop_at=None, progress=None, should_stop=None,
                 device=None, precision=None):
    """Train or resume a run; see :func:`engine.train.trainer.run_training`."""
    from engine.train.trainer import run_training as _run

    return _run(config, name=name, resume=resume, stop_at=stop_at, progress=progress,
                should_stop=should_stop, device=device, precision=precision)


__all__ = ["INIT_TEMPLATE", "TrainConfig", "config_from_dict", "load_config", "run_training"]
