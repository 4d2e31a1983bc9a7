"""Run an ablation: train the base network once per (variant, seed), everything else fixed.

Fixed across every run: the data split (drawn once with ``split_seed``), the optimizer, the
schedule, the epochs and the training settings of ``config``; a run's ``seed`` sets its
initial weights, data order and augmentation, and the same seeds are used for every variant.
Training is :func:`convolab.train.fit` (the loop of ``convolab train``).

Each run lives in ``OUT/runs/<axis>=<variant>/seed<k>/`` (fit's weights and metrics) and is
recorded in ``run.json`` there when it ends; a re-run with the same ``out`` and ``resume=True``
reads the records instead of training again, and continues an interrupted run from its
checkpoint. One ablation at a time holds ``out`` (see :func:`convolab.train.claim_output_dir`);
a folder holding an earlier ablation needs ``resume`` or ``overwrite``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from .._bench import interleaved
from ..analysis import summary
from ..data import DataSplit, load_dataset
from .._args import suggest
from ..models import list_models, register_model, unregister_model
from ..train import Callback, TrainConfig, build_model, check_data, claim_output_dir, evaluate, fit
from ..train.atomic import atomic_write_text
from ..train.config import MAX_IMAGE_SIZE, MAX_SEED
from ..train.loop import RUN_PRODUCTS, WEIGHTS_NAME
from .table import AblationRow, AblationTable
from .variants import SIZES_AXIS, build_variant, check_variant, train_sizes

RECORD = "run.json"
TABLE_FILES = ("table.md", "table.json", "table.csv", "accuracy_vs_macs.png")
# What an ablation writes into its folder: finding one of these there means an earlier ablation.
PRODUCTS = (*TABLE_FILES, "runs")
Swaps = Union[str, Sequence[str], Mapping[str, Sequence[str]]]


def parse_swaps(swaps: Swaps) -> list[tuple[str, str]]:
    """``"conv=standard,dilated"`` (or a list of such, or ``{"conv": [...]}``) -> ``[(axis, variant), ...]``.

    Example:
        >>> parse_swaps(["conv=standard,dilated", "head=avg"])
        [('conv', 'standard'), ('conv', 'dilated'), ('head', 'avg')]
    """
    if isinstance(swaps, Mapping):
        pairs = [(axis, v) for axis, values in swaps.items() for v in values]
    else:
        pairs = []
        for spec in [swaps] if isinstance(swaps, str) else swaps:
            axis, sep, values = spec.partition("=")
            if not sep or not axis.strip() or not values.strip():
                raise ValueError(f"ablate: expected a swap as AXIS=VARIANT[,VARIANT...], e.g. conv=standard,dilated, got {spec!r}")
            pairs += [(axis.strip(), v.strip()) for v in values.split(",") if v.strip()]
    if not pairs:
        raise ValueError("ablate: expected at least one variant to compare, got none")
    seen = set()
    for axis, value in pairs:
        check_variant(axis, value)
        if (axis, value) in seen:
            raise ValueError(f"ablate: variant {axis}={value} is listed twice")
        seen.add((axis, value))
    return pairs


@contextmanager
def _registered(base: str, axis: str, value: str, image_size: tuple[int, int]) -> Iterator[str]:
    """Register the variant as a model for the duration of its runs.

    :func:`convolab.train.fit` builds (and checkpoints, and resumes) models by registry name,
    so each variant gets one, e.g. ``mnist_cnn[conv=dilated]``; it is removed afterwards so the
    registry lists only the library's networks.
    """
    name = f"{base}[{axis}={value}]"

    def builder(**kwargs: Any) -> nn.Module:
        return build_variant(base, axis, value, image_size, **kwargs)

    builder.__name__ = name
    unregister_model(name)
    register_model(builder)
    try:
        yield name
    finally:
        unregister_model(name)


class _Progress(Callback):
    """Shows the current epoch and held-out accuracy on the ablation's progress bar."""

    def __init__(self, bar: Any, label: str) -> None:
        self.bar, self.label = bar, label

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.label} epoch {metrics['epoch']} acc {metrics['val_accuracy']:.2%}")


def _run_config(config: TrainConfig, model: str, seed: int, axis: str = "", value: str = "") -> TrainConfig:
    """The settings of one run; a ``train_sizes`` variant sets the image sizes."""
    if axis == SIZES_AXIS:
        return replace(config, model=model, seed=seed, image_size=train_sizes(value))
    return replace(config, model=model, seed=seed)


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("workers", "checkpoint_every", "allow_nonfinite")}


def _clear(out: Path) -> None:
    """Remove an earlier ablation's files from ``out``: only the names an ablation writes, never others."""
    for name in TABLE_FILES:
        (out / name).unlink(missing_ok=True)
    for run_dir in sorted(out.glob("runs/*/seed*")):
        for name in (RECORD, *RUN_PRODUCTS):
            (run_dir / name).unlink(missing_ok=True)
        for folder in (run_dir, run_dir.parent):
            try:
                folder.rmdir()  # only when empty: a user's own files stay
            except OSError:
                pass
    try:
        (out / "runs").rmdir()
    except OSError:
        pass


def _train_once(run_config: TrainConfig, run_dir: Path, data: DataSplit, callbacks: Sequence[Callback],
                sizes: Sequence[int] = ()) -> dict[str, Any]:
    """Train one run, or read its record; returns the record (with the held-out accuracy at each
    of ``sizes`` in ``size_accuracy``, measured from the run's weights)."""
    record_path = run_dir / RECORD
    wanted = _comparable(asdict(run_config))
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if _comparable(record["config"]) != wanted:
            changed = sorted(k for k in wanted if record["config"].get(k) != wanted[k])
            raise ValueError(
                f"ablate: {run_dir} holds a finished run with other settings ({', '.join(changed)}); "
                f"use the same settings or another --out folder"
            )
    else:
        resume = (run_dir / "last.pt").is_file()  # an interrupted run continues where it stopped
        result = fit(run_config, run_dir, resume=resume, callbacks=callbacks, data=data)
        record = {
            "config": asdict(run_config),
            "val_accuracy": result.val_accuracy,
            "epoch_seconds": [h["seconds"] for h in result.history],
            "history": result.history,
        }
    missing = [s for s in sizes if str(s) not in record.get("size_accuracy", {})]
    if missing or not record_path.is_file():
        if missing:
            record["size_accuracy"] = {**record.get("size_accuracy", {}),
                                       **_accuracy_at(run_config, data, run_dir / WEIGHTS_NAME, missing)}
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    # the finished run is recorded; its full training state (3x the weights) is not needed again
    (run_dir / "last.pt").unlink(missing_ok=True)
    return record


def _accuracy_at(run_config: TrainConfig, data: DataSplit, weights: Path, sizes: Sequence[int]) -> dict[str, float]:
    """Held-out accuracy of a finished run's weights at each image size (as ``{str(size): accuracy}``)."""
    model, pipeline = build_model(run_config, data)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    found = {}
    for size in sizes:
        pipeline.size = (size, size)
        found[str(size)] = evaluate(model, pipeline, data.val, 2 * run_config.batch_size)["val_accuracy"]
    return found


def _last_feature_field(model: nn.Module, input_size: tuple[int, ...]) -> tuple[Optional[tuple[int, ...]], int, int]:
    """(receptive field sizes of the last feature map with a spatial extent > 1, params, MACs)."""
    s = summary(model, input_size, depth=None)
    # the map the classifier reads: rows of a swapped-in head (its pyramid bins) do not count
    maps = [r for r in s.rows if not r.name.startswith("head.") and r.output_shapes and len(r.output_shapes[0]) == len(input_size)
            and any(d > 1 for d in r.output_shapes[0][2:])]
    last = maps[-1] if maps else None
    rf = None if last is None or last.fields is None else tuple(int(f.size) for f in last.fields)
    return rf, s.params, s.macs


def ablate(
    base: str = "mnist_cnn",
    swaps: Swaps = "conv=standard,depthwise_separable",
    *,
    out: Union[str, Path],
    data: str = "digits",
    epochs: int = 3,
    seeds: Sequence[int] = (0, 1, 2),
    config: Optional[TrainConfig] = None,
    split_seed: int = 0,
    threads: Optional[int] = 1,
    latency_repeats: int = 7,
    progress: bool = False,
    plot: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    eval_sizes: Optional[Sequence[int]] = None,
) -> AblationTable:
    """Train ``base`` once per variant and seed; return (and save in ``out``) the comparison table.

    Args:
        base: a registry name (``convolab.models.list_models()``).
        swaps: the variants, in table order: ``"conv=standard,dilated"``, a list of such specs
            (several axes, each variant changed alone) or ``{"conv": ["standard", "dilated"]}``.
            Axes and variants: :func:`convolab.ablation.axes`.
        out: folder for the runs and the table (``table.md``/``.json``/``.csv``,
            ``accuracy_vs_macs.png``). Finished runs found there are not repeated.
        data: ``"digits"``, ``"mnist:PATH"`` or ``"folder:PATH"``.
        epochs: training epochs of every run.
        seeds: the random seeds of every variant (weights, data order, augmentation).
        config: the other training settings (batch size, optimizer, lr, schedule, limit, ...);
            its model, data, epochs and seed are overridden. Default: :class:`TrainConfig`'s.
        split_seed: seed of the held-out split, the same for every run.
        threads: torch CPU threads during the ablation (default 1: small networks gain nothing
            from more on a shared machine); ``None`` keeps torch's setting.
        latency_repeats: interleaved timing repeats of the per-image latency.
        progress: show a tqdm bar over the runs.
        plot: also save the accuracy-vs-MACs plot (needs matplotlib).
        resume: continue the ablation in ``out``: its finished runs are read back, an interrupted
            run continues from its checkpoint, new variants and seeds are trained.
        overwrite: replace the ablation in ``out`` (its runs and tables are deleted first).
        eval_sizes: image sizes at which a ``train_sizes`` study also measures every run's
            held-out accuracy (the ``acc@S`` columns). Default: every size its variants name.

    Returns:
        AblationTable: one row per variant in the order of ``swaps``.

    Raises:
        ValueError: an unknown axis or variant, bad settings, ``out`` unusable, in use by another
            run, holding an earlier ablation without ``resume``/``overwrite``, or holding runs with
            other settings.

    Example:
        >>> table = ablate("mnist_cnn", "conv=standard,flattened", out=getfixture("tmp_path"), epochs=1,
        ...                seeds=[0], config=TrainConfig(limit=64, batch_size=32), plot=False)
        >>> [row.variant for row in table.rows]
        ['standard', 'flattened']
    """
    if base not in list_models(aliases=True):
        raise ValueError(f"ablate: unknown base network {base!r}{suggest(base, list_models())} (`convolab models` lists them)")
    pairs = parse_swaps(swaps)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"ablate: seeds must be distinct and at least one, got {seeds}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]
    if bad:
        raise ValueError(f"ablate: seeds must be ints in [0, 2**63 - 1], got {bad[0]!r}")
    template = replace(config or TrainConfig(), model=base, data=data, epochs=epochs)
    template.validate()
    named = sorted({size for axis, value in pairs if axis == SIZES_AXIS for size in train_sizes(value)})
    sizes = named if eval_sizes is None else list(eval_sizes)
    if eval_sizes is not None and not named:
        raise ValueError(f"ablate: eval_sizes measures a {SIZES_AXIS} study; no {SIZES_AXIS} variant is asked for")
    if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_IMAGE_SIZE for v in sizes) or (
            eval_sizes is not None and not sizes):
        raise ValueError(f"ablate: eval_sizes must be image sizes in [1, {MAX_IMAGE_SIZE}], got {list(sizes)!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"ablate: threads must be >= 1, got {threads}")
    out = Path(out)
    with claim_output_dir(out, resume=resume, overwrite=overwrite, op="ablate", products=PRODUCTS,
                           kind="ablation"):
        if overwrite:
            _clear(out)
        split = load_dataset(template.data, val_fraction=template.val_fraction, seed=split_seed,
                             limit=template.limit, size=template.image_size)
        check_data(template, split)
        return _ablate(base, pairs, seeds, template, split, out, split_seed, threads, latency_repeats, progress, plot,
                       sizes)


def _ablate(base: str, pairs: list[tuple[str, str]], seeds: list[int], template: TrainConfig, split: DataSplit,
            out: Path, split_seed: int, threads: Optional[int], latency_repeats: int, progress: bool,
            plot: bool, sizes: list[int]) -> AblationTable:
    for axis, value in pairs:  # a base network whose head takes one size fails here, before any training
        if axis == SIZES_AXIS:
            build_model(_run_config(template, base, seeds[0], axis, value), split)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pairs) * len(seeds), desc="ablate", unit="run", dynamic_ncols=True)
    try:
        measured: list[dict[str, Any]] = []
        models: dict[str, nn.Module] = {}
        inputs: dict[str, torch.Tensor] = {}
        for axis, value in pairs:
            first = _run_config(template, base, seeds[0], axis, value).sizes
            image_size = tuple(split.size) if first is None else (first[0],) * 2
            measured_at = sizes if axis == SIZES_AXIS else []
            with _registered(base, axis, value, image_size) as name:
                records = []
                for seed in seeds:
                    label = f"{axis}={value} seed {seed}"
                    if bar is not None:
                        bar.set_description(label)
                    run_dir = out / "runs" / f"{axis}={value}" / f"seed{seed}"
                    records.append(_train_once(_run_config(template, name, seed, axis, value), run_dir, split,
                                               [_Progress(bar, label)], measured_at))
                    if bar is not None:
                        bar.update(1)
                model, pipeline = build_model(_run_config(template, name, seeds[0], axis, value), split)
            size = (1, pipeline.channels, *(pipeline.size or split.size))
            rf, params, macs = _last_feature_field(model, size)
            models[f"{axis}={value}"] = model.eval()
            inputs[f"{axis}={value}"] = torch.zeros(size)
            measured.append(dict(
                axis=axis, variant=value, params=params, macs=macs, receptive_field=rf,
                accuracies=tuple(r["val_accuracy"] for r in records), seeds=tuple(seeds),
                epoch_seconds=statistics.fmean(s for r in records for s in r["epoch_seconds"]),
                size_accuracies={size: tuple(r["size_accuracy"][str(size)] for r in records) for size in measured_at}
                if measured_at else None,
            ))
        # latency of all variants measured round-robin, so load on the machine hits them alike
        with torch.inference_mode():
            seconds = interleaved({k: (lambda m=m, x=inputs[k]: m(x)) for k, m in models.items()}, repeats=latency_repeats)
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(before)
    rows = tuple(AblationRow(**m, latency_ms=1e3 * seconds[f"{m['axis']}={m['variant']}"]) for m in measured)
    settings = {
        **{k: v for k, v in asdict(template).items() if k not in ("model", "seed", "workers", "checkpoint_every")},
        "seeds": seeds, "split_seed": split_seed, "data_source": split.source,
        "train_images": len(split.train), "val_images": len(split.val), "threads": torch.get_num_threads() if threads is None else threads,
    }
    table = AblationTable(base, rows, settings)
    table.save(out, plot=plot)
    return table
