"""Write per-volume predictions (class, probabilities, optional rotated predictions) of an inference run to CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.networks import eval_mode
from monai.utils import IgniteInfo, convert_to_tensor, min_version, optional_import

from monai_sre.handlers.classification import classification_postprocessing, is_multilabel
from monai_sre.utils.io import atomic_write
from monai_sre.transforms.rotation import rotate

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["PredictionWriter"]


def _items(value: Any) -> list[dict]:
    """A MONAI batch or output, decollated (list of dicts) or not (dict of batched values), as a list of dicts."""
    if isinstance(value, dict):
        n = len(next(iter(value.values())))
        return [{k: v[i] for k, v in value.items()} for i in range(n)]
    return list(value)


class _ItemWriter:
    """Base of the inference writers: ``_collect(engine)`` after every iteration, ``__call__(engine)`` at the end of
    the run, ``rows`` emptied when a run starts."""

    rows: list[dict[str, Any]]

    def attach(self, engine: Engine) -> None:
        """Register on ``STARTED`` (reset), ``ITERATION_COMPLETED`` (collect) and ``COMPLETED`` (report), once."""
        if not engine.has_event_handler(self._collect, Events.ITERATION_COMPLETED):
            engine.add_event_handler(Events.STARTED, self._reset)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
            engine.add_event_handler(Events.COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self.rows = []

    def _collect(self, engine: Engine) -> None:
        raise NotImplementedError

    def __call__(self, engine: Engine) -> None:
        raise NotImplementedError


class PredictionWriter(_ItemWriter):
    """Collect the evaluator's predictions and write ``output_file`` (CSV, atomically) at the end of the run.

    Columns: ``path``, ``pred`` (class index), ``pred_name``, one ``prob_<label>`` per class and, for each requested
    rotation, ``pred@<view>`` and ``prob@<view>`` (probability of the unrotated prediction's class), then
    ``invariant`` (every rotated prediction equals the unrotated one), ``max_prob_change`` and ``error``.

    A volume that could not be predicted gets a row with only its ``path`` and the reason in ``error``: the reason
    the data set put in ``error_key`` (see :class:`~monai_sre.workflows.InferenceDataset`) or non-finite scores.
    The run ends with one summary line (predicted and failed counts); if no volume at all could be predicted the
    CSV is still written and a ``RuntimeError`` makes the run fail.

    Args:
        output_file: CSV path.
        task: MedMNIST task string (softmax vs sigmoid scores and decisions).
        label_names: class names, index order; None uses the indices.
        rotations: ``(axis, angle)`` pairs (axis None in 2D) for the per-volume invariance check; None or empty
            skips it.
        backend: rotation back end (``"auto"``: batched MONAI affine on CUDA, TorchIO on CPU).
        path_key: item key holding the input path.
        image_key: item key holding the network input.
        pred_key: output key holding the scores (after the evaluator's post-processing).
        threshold: decision threshold for multi-label tasks.
        error_key: item key holding a loading error (empty or absent for a good item).

    Raises:
        ValueError: for a bad ``task`` or a malformed ``rotations`` entry.
        RuntimeError: at the end of the run, if every volume failed.

    Example:
        >>> PredictionWriter("out/predictions.csv", "binary-class", rotations=[(0, 90), (2, 45)]).attach(evaluator)
    """

    def __init__(
        self,
        output_file: str,
        task: str,
        label_names: Sequence[str] | None = None,
        rotations: Sequence[Sequence[Any]] | None = None,
        backend: str = "auto",
        path_key: str = "path",
        image_key: str = "image",
        pred_key: str = "pred",
        threshold: float = 0.5,
        error_key: str = "error",
    ) -> None:
        self.postprocessing = classification_postprocessing(task)
        self.multilabel = is_multilabel(task)
        self.output_file = str(output_file)
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.rotations: list[tuple[int | None, float]] = []
        for r in rotations or []:
            if not isinstance(r, Sequence) or len(r) != 2:
                raise ValueError(f"each rotation must be an (axis, angle) pair, got {r!r}.")
            self.rotations.append((None if r[0] is None else int(r[0]), float(r[1])))
        self.backend = backend
        self.path_key, self.image_key, self.pred_key = path_key, image_key, pred_key
        self.threshold = threshold
        self.error_key = error_key
        self.rows = []

    def _decide(self, scores: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return (scores > self.threshold).long()
        return scores.argmax(dim=1)

    @staticmethod
    def _view_name(axis: int | None, angle: float) -> str:
        return f"rot{angle:g}" if axis is None else f"axis{axis}_rot{angle:g}"

    def _collect(self, engine: Engine) -> None:
        batch, output = _items(engine.state.batch), _items(engine.state.output)
        scores = torch.stack([torch.as_tensor(o[self.pred_key]).float().reshape(-1) for o in output]).cpu()
        preds = self._decide(scores)
        rotated: dict[str, torch.Tensor] = {}
        if self.rotations:
            x = torch.stack([torch.as_tensor(b[self.image_key]) for b in batch]).float().to(engine.state.device)
            with eval_mode(engine.network), torch.no_grad():
                for axis, angle in self.rotations:
                    xr = rotate(x, angle, axis, backend=self.backend)
                    logits = engine.inferer(xr, engine.network) if hasattr(engine, "inferer") else engine.network(xr)
                    scores_r = [self.postprocessing({"pred": p})["pred"] for p in torch.as_tensor(logits).float()]
                    rotated[self._view_name(axis, angle)] = convert_to_tensor(torch.stack(scores_r).cpu(), track_meta=False)
        names = self.label_names or [str(i) for i in range(scores.shape[1])]
        for i, b in enumerate(batch):
            row: dict[str, Any] = {"path": str(b.get(self.path_key, ""))}
            error = str(b.get(self.error_key) or "")
            if not error and not bool(torch.isfinite(scores[i]).all()):
                error = "the network output is not finite (NaN/Inf scores)"
            if error:
                self.rows.append({**row, "error": error})
                continue
            if self.multilabel:
                row["pred"] = "".join(str(int(v)) for v in preds[i])
                row["pred_name"] = ";".join(n for n, v in zip(names, preds[i]) if v)
            else:
                row["pred"] = int(preds[i])
                row["pred_name"] = names[int(preds[i])] if int(preds[i]) < len(names) else str(int(preds[i]))
            row.update({f"prob_{n}": round(float(p), 6) for n, p in zip(names, scores[i])})
            invariant, change = True, 0.0
            for view, s in rotated.items():
                p = self._decide(s[i : i + 1])[0]
                row[f"pred@{view}"] = "".join(str(int(v)) for v in p) if self.multilabel else int(p)
                ref = scores[i] if self.multilabel else scores[i, int(preds[i])]
                now = s[i] if self.multilabel else s[i, int(preds[i])]
                row[f"prob@{view}"] = round(float(now.max() if self.multilabel else now), 6)
                invariant &= bool(torch.equal(p, preds[i]))
                change = max(change, float((now - ref).abs().max()))
            if rotated:
                row["invariant"] = invariant
                row["max_prob_change"] = round(change, 6)
            row["error"] = ""
            self.rows.append(row)

    def __call__(self, engine: Engine) -> None:
        if not self.rows:
            engine.logger.warning(f"PredictionWriter: no predictions collected, {self.output_file} not written.")
            return
        fields = list(dict.fromkeys(k for r in self.rows for k in r if k != "error")) + ["error"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.output_file, buf.getvalue().encode())
        ok = [r for r in self.rows if not r["error"]]
        n_failed = len(self.rows) - len(ok)
        msg = f"Predicted {len(ok)} of {len(self.rows)} volumes, {n_failed} failed; wrote {self.output_file}"
        if self.rotations and ok:
            n_inv = sum(bool(r["invariant"]) for r in ok)
            msg += f" ({n_inv}/{len(ok)} predictions unchanged under {len(self.rotations)} rotations)"
        if len(ok) < len(self.rows):
            msg += " (the failed ones are listed with their reasons in its 'error' column)"
        engine.logger.info(msg + ".")
        if not ok:
            raise RuntimeError(f"no volume could be predicted: all {len(self.rows)} failed, see {self.output_file}.")
