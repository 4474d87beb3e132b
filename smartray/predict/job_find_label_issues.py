"""Find label errors: `smartray find-label-issues --split NAME [--folds 5]`.

Trains K models on folds of the split's labelled assets (whole near-duplicate groups per
fold), scores each asset with the model that never saw it, and ranks the suspected
errors with cleanlab's confident learning into `label_issues`. Act on them with
`smartray review --reopen --from-label-issues --top N` and send them for re-annotation
with `smartray export --from-label-issues --top N`.
"""

from pydantic import Field

from smartray.jobrun import JobSettings, field_from, run_job
from smartray.predict import LabelIssuesConfig


class FindLabelIssuesJob(JobSettings):
    """Suspected label errors, from K-fold out-of-sample probabilities."""

    split: str = field_from(LabelIssuesConfig, "split", description="split to check")
    folds: int = field_from(LabelIssuesConfig, "folds", description="K folds (K models)")
    seed: int = field_from(LabelIssuesConfig, "seed", description="fixes folds and training")
    ontology: str | None = field_from(LabelIssuesConfig, "ontology", description="ontology name")
    ontology_version: int | None = field_from(
        LabelIssuesConfig, "ontology_version", description="ontology version (default: latest)"
    )
    model: str = field_from(
        LabelIssuesConfig, "model", description="small-cnn, resnet18 or module:factory"
    )
    image_size: int = field_from(LabelIssuesConfig, "image_size", description="image side in px")
    epochs: int = field_from(LabelIssuesConfig, "epochs", description="epochs per fold model")
    batch_size: int = field_from(LabelIssuesConfig, "batch_size", description="batch size")
    lr: float = field_from(LabelIssuesConfig, "lr", description="learning rate")
    augment: str = field_from(
        LabelIssuesConfig, "augment", description="augment ops on training images, or none"
    )
    use_gpu: bool = field_from(LabelIssuesConfig, "use_gpu", description="train and score on GPUs")
    actors: int = field_from(LabelIssuesConfig, "actors", description="scoring actors")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def run(cfg: FindLabelIssuesJob) -> str:
    """Finds the issues and returns the summary (the top issues on the lines after it)."""
    from smartray.predict import find_label_issues  # loads Ray: not for `--help`

    config = LabelIssuesConfig(**cfg.model_dump(exclude={"lake", "ray_address", "config"}))
    return find_label_issues(config, lake=cfg.lake, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray find-label-issues` and `python -m jobs.find_label_issues`."""
    run_job(FindLabelIssuesJob, argv, "smartray find-label-issues", run)
