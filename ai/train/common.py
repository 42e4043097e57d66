"""Shared training plumbing: seeding, CPU threads, time budget, saving, hashing."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

import numpy as np


def setup_tf(seed: int, threads: int | None = None):
    """Seed Python/numpy/TF and cap TF's CPU threads; returns the keras module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # already initialised in this process (tests)
            pass
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    return keras


def time_limit_callback(max_minutes: float):
    """A Keras callback that stops training once `max_minutes` of wall time have passed."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if (time.monotonic() - self.start) / 60 > max_minutes:
                print(f"time limit of {max_minutes} min reached after epoch {epoch + 1}")
                self.model.stop_training = True

    return TimeLimit()


def save_inference_model(model, build, path: Path) -> None:
    """Save the trained weights in a fresh, uncompiled copy of the architecture.

    No optimizer state and no custom losses/metrics are stored, so the file is small and loads
    with `keras.saving.load_model(path, safe_mode=True)` and no custom objects.
    """
    fresh = build()
    fresh.set_weights(model.get_weights())
    fresh.save(path)


def fit_and_save(model, build, train_ds, validation, cfg: dict, callbacks: list, metric: str,
                 path: Path, command: str) -> dict:
    """Train with early stopping on ``metric`` (higher is better) and the time budget, save
    the inference model to ``path``; returns the history record (epochs, best epoch, time).

    ``callbacks``: extra callbacks that must run before early stopping (e.g. one that adds
    ``metric`` to the logs); History, EarlyStopping and the time limit are added here.
    """
    import datetime

    import keras

    history = keras.callbacks.History()
    callbacks = [
        *callbacks,
        history,
        keras.callbacks.EarlyStopping(metric, mode="max", patience=cfg["patience"],
                                      restore_best_weights=True),
        *cfg.get("_extra_callbacks", []),
        time_limit_callback(cfg["max_minutes"]),
    ]
    start = time.monotonic()
    model.fit(train_ds, validation_data=validation, epochs=cfg["epochs"],
              callbacks=callbacks, verbose=2)
    minutes = (time.monotonic() - start) / 60
    save_inference_model(model, build, path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best = int(np.nanargmax(hist[metric]))
    record_cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return {"command": command, "date": datetime.date.today().isoformat(),
            "config": record_cfg, "history": hist, "epochs_run": len(hist["loss"]),
            "best_epoch": best + 1, "train_minutes": round(minutes, 1),
            "params": int(model.count_params())}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
