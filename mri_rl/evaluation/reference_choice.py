"""The fixed order that a share of the room is taken against, chosen on val (``mri-rl evaluate
--reference-from VAL_EVALUATION``).

A share of the room, ``(policy − reference) / (oracle − reference)`` in paired SSIM AUC, is only as
fair as its reference. The one LBCS order of Gözcü et al. (IEEE TMI 2018), learned on a few training
slices, is on some reconstructors far below low-to-high or an order per kind of volume, and a share
taken against it then credits a learned policy with what any fixed order gets. Picking the strongest
fixed order on the test split itself would tune the benchmark on the images it judges; this module
picks it on an earlier evaluation of the *val* split with the same task and reconstructor, among the
fixed orders rolled in both, and checks that the LBCS orders compared there are those rolled here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mri_rl.evaluation.lbcs_orders import KIND_ORDERS
from mri_rl.evaluation.policy_specs import LBCS_NAMES
from mri_rl.evaluation.report import AUC_LABELS
from mri_rl.files import atomic_write_text
from mri_rl.provenance import read_json_record, record_differences
from mri_rl.task import AcquisitionTask

#: The baselines whose order does not read the slice being acquired: the candidates for the reference.
FIXED_ORDERS = ("lbcs", "lbcs_kind", "lowtohigh", "equispaced")


class ChosenReference(NamedTuple):
    """The fixed order with the highest mean SSIM AUC per slice on a val evaluation.

    Attributes:
        policy: its name (one of :data:`FIXED_ORDERS`).
        source: the val evaluation's folder.
        val_scores: each candidate's ``(SSIM AUC, PSNR AUC)`` per-slice means on val.
    """

    policy: str
    source: Path
    val_scores: dict[str, tuple[float, float]]

    def record(self) -> dict[str, Any]:
        """What summary.json's record keeps of the choice (``settings.reference``)."""
        return {
            "policy": self.policy,
            "chosen_on": str(self.source),
            "val_ssim_auc": {name: ssim for name, (ssim, _) in self.val_scores.items()},
            "val_psnr_auc": {name: psnr for name, (_, psnr) in self.val_scores.items()},
        }

    def why(self) -> str:
        """summary.md's account of the choice: each candidate's val means, the chosen one first."""
        ranked = sorted(self.val_scores.items(), key=lambda item: -item[1][0])
        cells = "\n".join(f"| {name} | {ssim:.4f} | {psnr:.3f} |" for name, (ssim, psnr) in ranked)
        return (
            f"`{self.policy}` had the highest SSIM AUC of the fixed orders rolled in both evaluations on the val "
            f"split ({self.source}), with this task and reconstructor; the choice read nothing of this split.\n\n"
            f"| fixed order | val SSIM AUC | val {AUC_LABELS['psnr_auc']} |\n|---|---|---|\n{cells}\n"
        )


def _val_evaluation(source: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record and per-policy summary of the evaluation in ``source`` (its summary.json).

    Raises:
        ValueError: no readable summary.json with a record and policies, naming the file.
    """
    path = source / "summary.json"
    try:
        stored = json.loads(path.read_text())
        record, summary = stored["record"], stored["policies"]
        if not isinstance(record, dict) or not isinstance(summary, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"--reference-from: {path} is not the summary.json of an mri-rl evaluate run "
            f"({type(error).__name__}: {error}); expected the --out folder of an evaluation of the val split"
        ) from None
    return record, summary


def choose_reference(
    source: str | Path, task: AcquisitionTask, evaluated_digest: str, policies: Sequence[str]
) -> ChosenReference:
    """The fixed order among ``policies`` with the highest SSIM AUC on the val evaluation in ``source``.

    Args:
        source: the ``--out`` folder of an ``mri-rl evaluate`` run on the val split.
        task: this evaluation's task; the val evaluation's must not differ (budget, lines,
            reconstructor by fingerprint...).
        evaluated_digest: the fingerprint of the data this evaluation rolls; the val evaluation
            must have rolled other data.
        policies: the names this evaluation rolls; the candidates are its :data:`FIXED_ORDERS`
            that the val evaluation rolled too.

    Raises:
        ValueError: ``source`` holds no evaluation, or one of another split, task or of the same
            data; no fixed order was rolled in both.
    """
    source = Path(source)
    record, summary = _val_evaluation(source)
    split = record.get("settings", {}).get("split")
    if split != "val":
        raise ValueError(
            f"--reference-from: {source} evaluated the {split!r} split; the reference is chosen on val, never on "
            "the images it is judged on"
        )
    if record.get("data", {}).get("evaluated", {}).get("digest") == evaluated_digest:
        raise ValueError(f"--reference-from: {source} evaluated the same files as this evaluation")
    differences = AcquisitionTask.from_dict(record["task"]).differences(task)
    if differences:
        raise ValueError(
            f"--reference-from: {source} evaluated another task ({'; '.join(differences)}; there vs here): its "
            "fixed orders' scores say nothing of this one"
        )
    candidates = [name for name in FIXED_ORDERS if name in policies and name in summary]
    if not candidates:
        raise ValueError(
            f"--reference-from: no fixed order ({', '.join(FIXED_ORDERS)}) is both among this evaluation's "
            f"policies {list(policies)} and rolled in {source} ({sorted(summary)})"
        )
    scores = {name: (summary[name]["ssim_auc"]["mean"], summary[name]["psnr_auc"]["mean"]) for name in candidates}
    return ChosenReference(max(candidates, key=lambda name: scores[name][0]), source, scores)


def _lbcs_caches(folder: Path) -> Iterator[Path]:
    """The LBCS order caches of an evaluation folder, relative to it."""
    if (folder / "lbcs_order.json").is_file():
        yield Path("lbcs_order.json")
    yield from sorted(path.relative_to(folder) for path in (folder / KIND_ORDERS).glob("*.json"))


def lend_lbcs_orders(source: Path, out_dir: Path) -> None:
    """Copy the LBCS order caches of the evaluation in ``source`` into ``out_dir`` where it has none:
    an evaluation of the same task, training data and slices then rolls them without learning them
    again (each cache's record is checked on use, as always)."""
    for cache in _lbcs_caches(source):
        if not (out_dir / cache).exists():
            atomic_write_text(out_dir / cache, (source / cache).read_text())


def check_same_lbcs_orders(reference: ChosenReference, out_dir: Path) -> None:
    """Check that the LBCS orders scored on val were learned as those rolled here (same task,
    training data and slices, by their caches' records), else the choice compared another LBCS than
    this evaluation's. ``lbcs_kind`` is compared on the kinds both splits hold: a kind that only
    this split has (e.g. no sagittal val volume) gets its order learned the same way, unscored on val.

    Raises:
        ValueError: an LBCS candidate with no cache in both folders, or caches whose records differ,
            naming both files and what differs.
    """
    common = set(_lbcs_caches(reference.source)) & set(_lbcs_caches(out_dir))
    for candidate in LBCS_NAMES:
        caches = sorted(cache for cache in common if (cache.parent.name == KIND_ORDERS) == (candidate == "lbcs_kind"))
        if candidate in reference.val_scores and not caches:
            raise ValueError(
                f"--reference-from: {reference.source} and {out_dir} share no {candidate} order cache; the LBCS "
                "orders compared on val must be learned as those rolled here"
            )
        for cache in caches:
            there, here = reference.source / cache, out_dir / cache
            differences = record_differences(read_json_record(there), read_json_record(here) or {})
            if differences:
                raise ValueError(
                    f"--reference-from: {there} was learned otherwise than {here} ({'; '.join(differences)}): the "
                    "choice on val compared another LBCS order than this evaluation rolls"
                )
