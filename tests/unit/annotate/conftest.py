import hashlib

import pytest

from jobs import ontology as ontology_job
from smartray.tables import ASSETS, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import files, rows

ROOT_ONTOLOGY = "schemas/ontologies/animals.yaml"


@pytest.fixture
def labelled_lake(tmp_path):
    """A lake of 4 real 64x48 PNG assets whose files sit under `images/`, and the animals
    ontology registered. Returns (lake dir, image root, {file name: asset id})."""
    lake_dir, root = str(tmp_path / "lake"), tmp_path / "images"
    root.mkdir()
    ids = {}
    for i in range(4):
        data = files.png(files.pattern(48, 64, seed=i))
        (root / f"img{i}.png").write_bytes(data)
        ids[f"img{i}.png"] = hashlib.sha256(data).hexdigest()
    table = rows(ASSETS, n=4)
    table = table.set_column(0, "asset_id", [list(ids.values())])
    for name, value in (("width", 64), ("height", 48), ("format", "png")):
        table = table.set_column(table.schema.get_field_index(name), name,
                                 [[value] * 4])  # fmt: skip
    table = table.set_column(table.schema.get_field_index("data"), "data",
                             [[(root / n).read_bytes() for n in ids]])  # fmt: skip
    commit_rows(LakeLocation.from_uri(lake_dir), ASSETS, ASSETS.cast(table), app_id="seed")
    ontology_job.main(["add", ROOT_ONTOLOGY, "--lake", lake_dir])
    return lake_dir, root, ids
