"""The AWS cluster-launcher config, checked by Ray's own validator (what `ray up` runs)."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[2] / "cluster" / "aws.yaml"


@pytest.fixture
def config():
    return yaml.safe_load(CONFIG.read_text())


def check(config):
    """What `ray up` does first: fill the provider's defaults, then validate."""
    validate_config(prepare_config(config))


def test_launcher_config_is_valid_for_ray(config):
    check(config)  # raises on any schema error


def test_nodes_reach_s3_through_a_role_and_no_keys_are_written_anywhere(config):
    text = CONFIG.read_text()
    for secret in ("aws_access_key_id", "aws_secret_access_key", "AWS_SECRET", "AKIA"):
        assert secret.lower() not in text.lower()
    for name, node in config["available_node_types"].items():
        assert node["node_config"]["IamInstanceProfile"]["Name"], name


def test_head_runs_no_tasks_and_there_are_cpu_and_gpu_groups(config):
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert types["gpu_workers"]["node_config"]["InstanceType"].startswith(("g", "p"))
    assert types["cpu_workers"]["max_workers"] > 0
    assert any("RAY_AUTH_MODE=token" in opt for opt in config["docker"]["run_options"])
    assert config["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}
    assert all("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"][1:])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("max_wokers",), 3),  # a misspelt top-level field
        (("available_node_types", "cpu_workers", "resources", "CPU"), "8"),  # a string count
        (("docker", "imag"), "x"),  # a misspelt docker field
    ],
)
def test_broken_configs_are_caught(config, path, value):
    broken = copy.deepcopy(config)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        check(broken)
