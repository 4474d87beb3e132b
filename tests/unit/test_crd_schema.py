"""smartray.deploy.crd: custom objects checked as the API server checks a CREATE."""

import copy
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smartray.deploy.crd import CRDSet, validate_against


def obj(properties, **extra):
    return {"type": "object", "properties": properties, **extra}


STR = {"type": "string"}
INT = {"type": "integer"}


def errors_of(schema, value):
    return validate_against(schema, value)[1]


# --- defaults ----------------------------------------------------------------------


def test_defaults_fill_missing_fields_in_objects_items_and_maps_without_touching_input():
    schema = obj(
        {
            "mode": {"type": "string", "default": "fast"},
            "kept": {"type": "string", "default": "x"},
            "items": {"type": "array", "items": obj({"n": {**INT, "default": 1}})},
            "map": {
                "type": "object",
                "additionalProperties": obj({"on": {"type": "boolean", "default": True}}),
            },
        }
    )
    value = {"kept": "mine", "items": [{}, {"n": 5}], "map": {"a": {}}}
    before = copy.deepcopy(value)
    out, errors = validate_against(schema, value)
    assert errors == []
    assert out == {
        "mode": "fast",
        "kept": "mine",
        "items": [{"n": 1}, {"n": 5}],
        "map": {"a": {"on": True}},
    }
    assert value == before


def test_nested_defaults_apply_only_when_the_parent_object_exists():
    schema = obj({"outer": obj({"inner": {**INT, "default": 3}})})
    assert validate_against(schema, {})[0] == {}
    assert validate_against(schema, {"outer": {}})[0] == {"outer": {"inner": 3}}


def test_a_defaulted_object_gets_its_own_nested_defaults():
    schema = obj({"outer": {**obj({"inner": {**INT, "default": 3}}), "default": {}}})
    assert validate_against(schema, {})[0] == {"outer": {"inner": 3}}


def test_defaults_are_applied_before_validation_so_a_bad_default_is_caught():
    schema = obj({"mode": {"type": "string", "enum": ["a", "b"], "default": "c"}})
    errors = errors_of(schema, {})
    assert len(errors) == 1
    assert errors[0].startswith('mode: Unsupported value: "c"')


def test_nulls_are_pruned_or_defaulted_unless_nullable():
    schema = obj({"a": STR, "b": {**STR, "default": "d"}, "c": {**STR, "nullable": True}})
    out, errors = validate_against(schema, {"a": None, "b": None, "c": None})
    assert (out, errors) == ({"b": "d", "c": None}, [])
    assert errors_of({"type": "array", "items": STR}, ["x", None]) == [
        "[1]: must be of type string, got null"
    ]


# --- unknown fields ------------------------------------------------------------------


def test_unknown_fields_are_reported_with_their_path_and_pruned():
    schema = obj({"spec": obj({"groups": {"type": "array", "items": obj({"name": STR})}})})
    out, errors = validate_against(
        schema, {"spec": {"groups": [{"name": "a", "nmae": "b"}]}, "extra": 1}
    )
    assert errors == ["extra: unknown field", "spec.groups[0].nmae: unknown field"]
    assert out == {"spec": {"groups": [{"name": "a"}]}}


def test_preserve_unknown_fields_and_additional_properties_accept_other_keys():
    schema = obj(
        {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "map": {"type": "object", "additionalProperties": INT},
            "empty": {"type": "object"},
        }
    )
    out, errors = validate_against(
        schema, {"free": {"any": [1]}, "map": {"k": "v"}, "empty": {"x": 1}}
    )
    assert errors == ["empty.x: unknown field", "map.k: must be of type integer, got string"]
    assert out["free"] == {"any": [1]}


def test_embedded_resource_allows_and_requires_type_meta():
    schema = obj(
        {
            "pod": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": obj({})},
            }
        }
    )
    good = {
        "pod": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {},
        }
    }
    assert errors_of(schema, good) == []
    errors = errors_of(schema, {"pod": {"metadata": {"nmae": "p"}}})
    assert errors == [
        "pod.metadata.nmae: unknown field",
        "pod.apiVersion: Required value",
        "pod.kind: Required value",
    ]


# --- types and keywords ---------------------------------------------------------------


def test_an_int_or_a_bool_where_a_string_map_value_is_required_is_an_error():
    schema = obj({"rayStartParams": {"type": "object", "additionalProperties": STR}})
    errors = errors_of(schema, {"rayStartParams": {"num-cpus": 2, "block": True, "port": "6379"}})
    assert errors == [
        "rayStartParams.num-cpus: must be of type string, got integer",
        "rayStartParams.block: must be of type string, got boolean",
    ]


@pytest.mark.parametrize(
    ("schema", "value", "error"),
    [
        (INT, True, "must be of type integer, got boolean"),
        (INT, 1.5, "must be of type integer, got number"),
        ({"type": "number"}, "1", "must be of type number, got string"),
        ({"type": "boolean"}, "true", "must be of type boolean, got string"),
        ({"type": "array"}, {}, "must be of type array, got object"),
        ({"x-kubernetes-int-or-string": True}, 1.5, "must be an integer or a string, got number"),
        (
            {"x-kubernetes-int-or-string": True},
            False,
            "must be an integer or a string, got boolean",
        ),
        ({**INT, "format": "int32"}, 2**31, "2147483648 does not fit in format int32"),
        ({**INT, "minimum": 1}, 0, "should be greater than or equal to 1"),
        ({**INT, "minimum": 1, "exclusiveMinimum": True}, 1, "should be greater than 1"),
        ({**INT, "maximum": 9, "exclusiveMaximum": True}, 9, "should be less than 9"),
        ({"type": "number", "exclusiveMinimum": 0}, 0, "should be greater than 0"),
        ({**STR, "maxLength": 2}, "abc", "Too long: may not be more than 2 characters"),
        ({**STR, "minLength": 2}, "a", "should be at least 2 characters long"),
        ({**STR, "pattern": "^[a-z]+$"}, "ab1", "should match '^[a-z]+$'"),
        ({**STR, "pattern": "^[a-z]+$"}, "ab\n", "should match '^[a-z]+$'"),  # Go's $
        ({"type": "array", "minItems": 1}, [], "should have at least 1 items"),
        ({"type": "array", "maxItems": 1}, [1, 2], "Too many: 2: must have at most 1 items"),
        ({"type": "object", "minProperties": 1}, {}, "should have at least 1 properties"),
        ({**STR, "enum": ["a"]}, "b", 'Unsupported value: "b": supported values: "a"'),
        ({**INT, "multipleOf": 3}, 10**400, "should be a multiple of 3"),
        ({"type": "number", "multipleOf": 0.5}, float("inf"), "should be a multiple of 0.5"),
    ],
)
def test_type_and_keyword_violations(schema, value, error):
    assert errors_of(schema, value) == [f"<root>: {error}"]


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"x-kubernetes-int-or-string": True, "pattern": "^[0-9]+m?$"}, 3),
        ({"x-kubernetes-int-or-string": True, "pattern": "^[0-9]+m?$"}, "500m"),
        ({"type": "number"}, 2),
        ({**INT, "format": "int64"}, 2**40),
        ({**STR, "nullable": True}, None),
        ({"type": "boolean", "enum": [True]}, True),
    ],
)
def test_valid_values_pass(schema, value):
    assert errors_of(schema, value) == []


def test_required_fields_are_reported_at_their_path():
    schema = obj({"spec": obj({"image": STR}, required=["image"])}, required=["spec"])
    assert errors_of(schema, {}) == ["spec: Required value"]
    assert errors_of(schema, {"spec": {}}) == ["spec.image: Required value"]


def test_all_errors_are_collected():
    schema = obj({"a": INT, "b": STR, "c": {"type": "array", "items": INT}})
    assert len(errors_of(schema, {"a": "x", "b": 1, "c": ["y", "z"], "d": 0})) == 5


# --- list types ------------------------------------------------------------------------


PORTS = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
    "items": obj({"containerPort": INT, "protocol": {**STR, "default": "TCP"}, "name": STR}),
}


def test_list_map_key_defaults_apply_before_keys_are_checked():
    out, errors = validate_against(
        PORTS, [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]
    )
    assert errors == []
    assert out[0]["protocol"] == "TCP"


def test_list_map_missing_key_and_duplicate_keys_are_errors():
    errors = errors_of(
        PORTS, [{"name": "a"}, {"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]
    )
    assert errors == [
        "[0].containerPort: Required value",
        '[2]: Duplicate value: an earlier item has containerPort=80, protocol="TCP"',
    ]


def test_list_set_duplicates_are_errors_and_atomic_lists_allow_them():
    assert errors_of(
        {"type": "array", "items": STR, "x-kubernetes-list-type": "set"}, ["a", "b", "a"]
    ) == ['[2]: Duplicate value: "a"']
    assert (
        errors_of({"type": "array", "items": STR, "x-kubernetes-list-type": "atomic"}, ["a", "a"])
        == []
    )


# --- CEL -------------------------------------------------------------------------------


def rules(*specs, **props):
    return obj(props or {"a": INT, "b": INT}, **{"x-kubernetes-validations": list(specs)})


def test_cel_false_reports_the_rule_message_or_the_rule():
    schema = rules(
        {"rule": "!has(self.a) || self.a < 5", "message": "a must be below 5"},
        {"rule": "has(self.b)"},
    )
    assert errors_of(schema, {"a": 7, "b": 1}) == ["<root>: a must be below 5"]
    assert errors_of(schema, {"a": 2}) == ["<root>: failed rule: has(self.b)"]
    assert errors_of(schema, {"a": 1, "b": 2}) == []


def test_cel_message_expression_and_field_path():
    schema = obj(
        {
            "spec": rules(
                {
                    "rule": "self.a > 0",
                    "messageExpression": "'a is ' + string(self.a)",
                    "fieldPath": ".a",
                }
            )
        }
    )
    assert errors_of(schema, {"spec": {"a": 0}}) == ["spec.a: a is 0"]


def test_cel_rules_on_items_run_once_per_item():
    schema = {"type": "array", "items": rules({"rule": "self.a == 1", "message": "a must be 1"})}
    assert errors_of(schema, [{"a": 1}, {"a": 2}]) == ["[1]: a must be 1"]


def test_transition_rules_are_skipped_on_create():
    schema = obj(
        {
            "mode": {
                **STR,
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
            }
        }
    )
    assert errors_of(schema, {"mode": "x"}) == []


def test_cel_evaluation_and_compile_errors_are_reported_not_raised():
    errors = errors_of(rules({"rule": "self.missing == 1"}), {"a": 1})
    assert len(errors) == 1
    assert errors[0].startswith("<root>: rule 'self.missing == 1' could not be evaluated: ")
    errors = errors_of(rules({"rule": "self.a ==="}), {"a": 1})
    assert errors[0].startswith("<root>: rule 'self.a ===' does not compile")


def test_cel_is_not_evaluated_on_a_value_with_a_type_error():
    errors = errors_of(rules({"rule": "self.a < self.b"}), {"a": "x", "b": 1})
    assert errors == [
        "a: must be of type integer, got string",
        "<root>: validation rules not checked: correct the errors above first",
    ]


@settings(max_examples=25, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from("abmpx"), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_any_json_value_gives_errors_not_exceptions(value):
    schema = obj(
        {
            "a": INT,
            "b": rules({"rule": "self.a < self.b"}),
            "m": {"type": "object", "additionalProperties": STR},
            "p": PORTS,
            "x": {"x-kubernetes-int-or-string": True},
        }
    )
    _, errors = validate_against(schema, value)
    assert all(isinstance(e, str) for e in errors)


# --- CRDSet on a small CRD -------------------------------------------------------------


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": obj(
                        {
                            "apiVersion": STR,
                            "kind": STR,
                            "metadata": {"type": "object"},
                            "spec": obj({"size": {**INT, "default": 1}}),
                            "status": obj({"ready": {"type": "boolean"}}),
                        }
                    )
                },
            },
            {
                "name": "v0",
                "served": False,
                "storage": False,
                "schema": {"openAPIV3Schema": obj({})},
            },
        ],
    },
}


@pytest.fixture
def widgets(tmp_path):
    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump_all([{"kind": "ConfigMap"}, WIDGET_CRD]))
    return CRDSet.load(tmp_path)


def widget(**metadata):
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata, "spec": {}}


def test_crdset_loads_served_versions_only(widgets, tmp_path):
    assert widgets.schema_for("example.com/v1", "Widget")["properties"]["spec"]["type"] == "object"
    assert widgets.schema_for("example.com/v0", "Widget") is None
    assert widgets.schema_for("example.com/v1", "Gadget") is None
    with pytest.raises(FileNotFoundError):
        CRDSet.load(tmp_path / "missing")


def test_crdset_validate_defaults_and_drops_status_on_create(widgets):
    out, errors = widgets.validate({**widget(name="w"), "status": {"ready": True}})
    assert errors == []
    assert out == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }


@pytest.mark.parametrize("api_version", ["example.com/v0", "example.com/v2", "v1", None])
def test_unknown_api_version_or_kind_is_one_error(widgets, api_version):
    errors = widgets.validate({**widget(name="w"), "apiVersion": api_version})[1]
    assert len(errors) == 1
    assert "no served CRD" in errors[0]
    assert "example.com/v1 Widget" in errors[0]


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({}, "metadata.name: Required value: name or generateName is required"),
        (None, "metadata.name: Required value: name or generateName is required"),
        (
            {"name": "Bad_Name"},
            "metadata.name: Invalid value: 'Bad_Name': a lowercase RFC 1123 subdomain",
        ),
        (
            {"name": "a" * 254},
            "metadata.name: Invalid value: '" + "a" * 254 + "': must be no more than 253",
        ),
        (
            {"generateName": "Job-"},
            "metadata.generateName: Invalid value: 'Job-': a lowercase RFC 1123",
        ),
        ({"name": "w", "nmae": "w"}, "metadata.nmae: unknown field"),
        (
            {"name": "w", "namespace": "Team A"},
            "metadata.namespace: Invalid value: 'Team A': a lowercase RFC 1123",
        ),
        (
            {"name": "w", "labels": {"v": 2}},
            "metadata.labels.v: must be of type string, got integer",
        ),
        (
            {"name": "w", "labels": {"v": "a b"}},
            "metadata.labels.v: Invalid value: 'a b': a valid label",
        ),
        (
            {"name": "w", "labels": {"a/b/c": "x"}},
            "metadata.labels: Invalid value: 'a/b/c': a qualified name",
        ),
        (
            {"name": "w", "annotations": {"note": True}},
            "metadata.annotations.note: must be of type string",
        ),
    ],
)
def test_object_meta_is_checked(widgets, metadata, error):
    errors = widgets.validate({**widget(), "metadata": metadata})[1]
    assert len(errors) == 1, errors
    assert errors[0].startswith(error)


def test_object_meta_accepts_the_usual_fields(widgets):
    metadata = {
        "generateName": "w-",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/name": "smartray", "tier": ""},
        "annotations": {"example.com/Note": "anything at all"},
        "finalizers": ["example.com/cleanup"],
        "creationTimestamp": None,
    }
    assert widgets.validate(widget(**metadata))[1] == []


# --- the real KubeRay CRDs ---------------------------------------------------------------


@pytest.fixture
def kuberay(kuberay_crds):
    return kuberay_crds


def pod_template(name="ray-head"):
    return {"spec": {"containers": [{"name": name, "image": "rayproject/ray:2.60.0"}]}}


def ray_job(**spec):
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "ingest"},
        "spec": {
            "entrypoint": "python -m jobs.ingest",
            "rayClusterSpec": {
                "headGroupSpec": {"rayStartParams": {}, "template": pod_template()},
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu",
                        "rayStartParams": {"num-cpus": "2"},
                        "template": pod_template("worker"),
                    }
                ],
            },
            **spec,
        },
    }


def test_minimal_raycluster_is_valid_and_gets_defaults(kuberay):
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "demo"},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": pod_template()},
            "workerGroupSpecs": [
                {"groupName": "cpu", "rayStartParams": {}, "template": pod_template("worker")}
            ],
        },
    }
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 6379}
    ]
    out, errors = kuberay.validate(cluster)
    assert errors == []
    group = out["spec"]["workerGroupSpecs"][0]
    assert (group["replicas"], group["minReplicas"], group["numOfHosts"]) == (0, 0, 1)
    assert (
        out["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"]
        == "TCP"
    )


def test_rayjob_valid_and_defaulted(kuberay):
    out, errors = kuberay.validate(ray_job(shutdownAfterJobFinishes=True))
    assert errors == []
    assert out["spec"]["submissionMode"] == "K8sJobMode"
    assert out["spec"]["backoffLimit"] == 0


def test_rayjob_int_ray_start_param_is_caught_at_its_path(kuberay):
    job = ray_job()
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["rayStartParams"]["num-cpus"] = 2
    errors = kuberay.validate(job)[1]
    assert errors == [
        "spec.rayClusterSpec.workerGroupSpecs[0].rayStartParams.num-cpus: "
        "must be of type string, got integer"
    ]


def test_rayjob_misspelt_field_is_unknown(kuberay):
    errors = kuberay.validate(ray_job(shutdownAfterJobFinish=True))[1]
    assert errors == ["spec.shutdownAfterJobFinish: unknown field"]


def test_rayjob_deletion_strategy_cel_rule(kuberay):
    errors = kuberay.validate(ray_job(deletionStrategy={"onSuccess": {"policy": "DeleteCluster"}}))[
        1
    ]
    assert errors == [
        "spec.deletionStrategy: deletionStrategy requires either BOTH onSuccess and onFailure, "
        "OR the deletionRules field (cannot be empty)"
    ]
    both = {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}}
    assert kuberay.validate(ray_job(deletionStrategy=both))[1] == []


def test_rayjob_validates_quickly(kuberay):
    job = ray_job(deletionStrategy={"onSuccess": {"policy": "DeleteCluster"}})
    kuberay.validate(job)
    start = time.perf_counter()
    for _ in range(10):
        kuberay.validate(job)
    assert (time.perf_counter() - start) / 10 < 0.1
