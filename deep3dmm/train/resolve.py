"""Which configuration a training invocation runs: defaults, file, options and resume rules.

The command line passes what the user gave (``--config FILE``, options by section); the
rules that turn it into one :class:`~deep3dmm.train.RunConfig` live here, so a Python user
gets the same checks: the embedded quick default, the published defaults once a dataset is
named, options that do not apply to a ``pca`` run, and a resumed run that may change only
the :data:`RESUMABLE` options. :func:`new_run_dir` is the run-folder policy.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from deep3dmm.errors import ConfigError
from deep3dmm.train.config import RunConfig, TrainConfig, load_config

__all__ = ["QUICK_TRAIN", "RESUMABLE", "check_resume", "new_run_dir", "resolve_config"]

#: The embedded default: minutes on 2 CPU cores (the published schedule is 300 epochs).
QUICK_TRAIN = {"epochs": 6, "batch_size": 16}

#: Options that may change when a run is resumed; every other option must match the run.
RESUMABLE = frozenset(
    ("train", name)
    for name in ("epochs", "device", "in_memory", "num_workers", "eval_batch_size",
                 "patience", "min_delta")
)  # fmt: skip


def new_run_dir(root: str | os.PathLike = "runs") -> Path:
    """A new run folder ``root/<date>-<time>`` (never an existing run)."""
    return Path(root) / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def resolve_config(
    given: dict[str, dict[str, Any]],
    *,
    config_file: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    names: dict[tuple[str, str], str] | None = None,
) -> RunConfig:
    """The configuration of one invocation.

    Args:
        given: the options the user set, by section (``{"model": {"preset": "coma"}}``).
        config_file: a TOML configuration the options override.
        run_dir: the run folder (read on ``resume``).
        resume: continue the run in ``run_dir``: its stored configuration, with only the
            :data:`RESUMABLE` options taken from ``given`` (and ``config_file``).
        names: how to name each ``(section, option)`` in messages (e.g. the CLI flag).

    Without ``config_file`` and dataset the result is the embedded quick default
    (:data:`QUICK_TRAIN`); with a dataset, the published defaults.

    Raises:
        ConfigError: a missing run to resume, options that contradict it, options that do
            not apply to a ``pca`` run, or invalid values.
    """
    if resume:
        path = Path(run_dir or ".") / "config.toml"
        if not path.is_file():
            raise ConfigError(
                "no run to resume here (config.toml missing)",
                path=path.parent,
                fix="check --out, or start the run without --resume",
            )
        stored = load_config(path)
        if config_file:  # the same command again, plus --resume: check the file too
            merged = load_config(config_file).replace(**given).to_dict()
            for section, values in given.items():
                merged[section].update(values)
            given = merged
        check_resume(stored, given, path)
        train = {k: v for k, v in given.get("train", {}).items() if ("train", k) in RESUMABLE}
        return stored.replace(train=train)
    if config_file:
        base = load_config(config_file)
    elif given.get("data", {}).get("path"):
        base = RunConfig()
    else:  # the embedded default
        base = RunConfig(train=TrainConfig(**QUICK_TRAIN))
    model = given.get("model", {})
    if model.get("kind") == "pca" or (model.get("preset") or base.model.preset) == "pca":
        from deep3dmm.train.pca_run import check_pca_options

        check_pca_options(given, names)
    return base.replace(**given)


def check_resume(stored: RunConfig, given: dict[str, dict], path: str | os.PathLike) -> None:
    """Refuse options that differ from the run being resumed (except :data:`RESUMABLE`)."""
    for section, values in given.items():
        for option, value in values.items():
            if (section, option) in RESUMABLE or (section, option) == ("data", "path"):
                continue
            current = getattr(getattr(stored, section), option)
            if isinstance(value, list):
                value = tuple(value)
            if value != current:
                raise ConfigError(
                    f"the run was trained with {section}.{option} = {current!r}, not "
                    f"{value!r}; --resume continues the stored configuration",
                    path=path,
                    fix="drop that option (only --epochs, --device, --in-memory, --workers "
                    "may change), or start a new run with another --out",
                )
    data = given.get("data", {}).get("path")
    if data and Path(data).resolve() != Path(stored.data.path).resolve():
        raise ConfigError(
            f"the run was trained on {stored.data.path}, not {data}",
            path=path,
            fix="drop --data (the run knows its dataset) or start a new run",
        )
