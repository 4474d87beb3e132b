"""The label ontology: which kinds of labels a project makes, and its classes.

Written as YAML (`schemas/ontologies/*.yaml` holds examples) and registered with
`smartray ontology add FILE`, which stores each version in the `ontologies` table. Every
label event records the ontology name and version it was made under.

    name: animals
    version: 1
    kinds: [class, boxes]          # class, tags, boxes, polygons
    classes:
      - {id: 0, name: cat}
      - {id: 1, name: dog, attributes: [{name: occluded, type: bool}]}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartray.errors import ConfigError

Kind = Literal["class", "tags", "boxes", "polygons"]
KINDS: tuple[str, ...] = ("class", "tags", "boxes", "polygons")


class Attribute(BaseModel):
    """An optional attribute of a labelled object (`occluded: true`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    type: Literal["bool", "text", "number", "choice"] = "bool"
    choices: tuple[str, ...] = ()


class ClassDef(BaseModel):
    """A class with a stable id: ids never change meaning across ontology versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    attributes: tuple[Attribute, ...] = ()


class Ontology(BaseModel):
    """A versioned label ontology."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=1)
    kinds: tuple[Kind, ...] = Field(min_length=1)
    classes: tuple[ClassDef, ...] = Field(min_length=1)

    @field_validator("kinds")
    @classmethod
    def _distinct_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"kinds {list(kinds)} repeat a kind")
        return kinds

    @model_validator(mode="after")
    def _distinct_classes(self) -> Ontology:
        seen_ids: dict[int, str] = {}
        seen_names: dict[str, int] = {}
        for c in self.classes:
            if c.id in seen_ids:
                raise ValueError(
                    f"class id {c.id} is used twice: by {seen_ids[c.id]!r} and {c.name!r}"
                )
            if c.name in seen_names:
                raise ValueError(
                    f"class name {c.name!r} is used twice (ids {seen_names[c.name]} and {c.id})"
                )
            seen_ids[c.id], seen_names[c.name] = c.name, c.id
        return self

    def class_by_name(self, name: str) -> ClassDef | None:
        """The class called `name`, if any."""
        return next((c for c in self.classes if c.name == name), None)

    def class_by_id(self, class_id: int) -> ClassDef | None:
        """The class with id `class_id`, if any."""
        return next((c for c in self.classes if c.id == class_id), None)

    @property
    def class_names(self) -> list[str]:
        """Class names in id order."""
        return [c.name for c in sorted(self.classes, key=lambda c: c.id)]

    def canonical_json(self) -> str:
        """The ontology as canonical JSON (what the `ontologies` table stores)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """sha256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def parse_ontology(data: Any, *, source: str = "ontology") -> Ontology:
    """Validates a parsed YAML/JSON document as an ontology.

    Raises:
        ConfigError: naming the class or field at fault.
    """
    try:
        return Ontology.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            if where.startswith("classes.") and isinstance(data, dict):
                idx = err["loc"][1]
                classes = data.get("classes") or []
                if isinstance(idx, int) and idx < len(classes) and isinstance(classes[idx], dict):
                    where += f" (class {classes[idx].get('name', '?')!r})"
            problems.append(f"{where or 'ontology'}: {err['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_ontology(path: str | Path) -> Ontology:
    """Reads and validates an ontology YAML file.

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid ontology.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"ontology {str(path)!r}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"ontology {str(path)!r}: not YAML ({e})") from None
    return parse_ontology(data, source=f"ontology {str(path)!r}")
