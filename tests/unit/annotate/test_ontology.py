import pytest

from jobs import ontology as ontology_job
from smartray.annotate.ontology import load_ontology, parse_ontology
from smartray.errors import ConfigError


def test_example_ontologies_load():
    onto = load_ontology("schemas/ontologies/animals.yaml")
    assert onto.class_names == ["cat", "dog", "bird"]
    assert load_ontology("schemas/ontologies/vehicles.yaml").kinds == ("boxes",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": [{"id": 0, "name": "cat"}, {"id": 0, "name": "dog"}]},
         "class id 0 is used twice: by 'cat' and 'dog'"),
        ({"classes": [{"id": 0, "name": "cat"}, {"id": 1, "name": "cat"}]},
         "class name 'cat' is used twice"),
        ({"classes": [{"id": -1, "name": "cat"}]}, "classes.0.id (class 'cat')"),
        ({"kinds": ["boxes", "masks"]}, "kinds.1"),
        ({"version": 0}, "version"),
    ],
)  # fmt: skip
def test_bad_ontologies_name_the_class_or_field(change, message):
    doc = {"name": "x", "version": 1, "kinds": ["boxes"], "classes": [{"id": 0, "name": "cat"}]}
    with pytest.raises(ConfigError, match="ontology") as e:
        parse_ontology({**doc, **change})
    assert message in str(e.value)


def test_add_is_idempotent_and_a_changed_version_is_refused(tmp_path, capsys):
    lake = str(tmp_path / "lake")
    ontology_job.main(["add", "schemas/ontologies/animals.yaml", "--lake", lake])
    ontology_job.main(["add", "schemas/ontologies/animals.yaml", "--lake", lake])
    out = capsys.readouterr().out
    assert "animals v1: registered" in out
    assert "animals v1: already registered, unchanged" in out
    changed = tmp_path / "animals.yaml"
    changed.write_text("name: animals\nversion: 1\nkinds: [boxes]\nclasses: [{id: 0, name: cat}]\n")
    with pytest.raises(SystemExit) as e:
        ontology_job.main(["add", str(changed), "--lake", lake])
    assert e.value.code == 2
    assert "registered with another definition" in capsys.readouterr().err
    dup = tmp_path / "dup.yaml"
    dup.write_text(
        "name: d\nversion: 1\nkinds: [boxes]\nclasses: [{id: 3, name: a}, {id: 3, name: b}]\n"
    )
    with pytest.raises(SystemExit):
        ontology_job.main(["add", str(dup), "--lake", lake])
    assert "class id 3 is used twice: by 'a' and 'b'" in capsys.readouterr().err
    ontology_job.main(["list", "--lake", lake])
    assert "animals v1: class, tags, boxes, polygons; classes cat, dog, bird" in (
        capsys.readouterr().out
    )
