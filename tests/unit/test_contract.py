"""The algorithms' copy of the container contract (algorithms/common/contract.py, kept apart so the
algorithms image does not carry the emulator) is pinned to the emulator's runtime/contract.py."""

from __future__ import annotations

import importlib
from pathlib import Path

from emulator.runtime import contract


def test_the_algorithms_copy_names_the_same_paths_and_variables(monkeypatch, tmp_path):
    monkeypatch.setenv(contract.ROOT_ENV, str(tmp_path))
    monkeypatch.setenv(contract.BIND_TO_PORT_ENV, "9123")
    import algorithms.common.contract as copy

    copy = importlib.reload(copy)  # reads the re-rooted /opt/ml set above
    tree = contract.OptMl.from_env()
    assert tree.root == tmp_path
    assert (copy.ROOT, copy.CONFIG, copy.DATA, copy.MODEL, copy.OUTPUT, copy.FAILURE) == (
        tree.root, tree.config, tree.data, tree.model, tree.output, tree.failure)
    assert copy.serving_port() == 9123
    monkeypatch.delenv(contract.ROOT_ENV)
    monkeypatch.delenv(contract.BIND_TO_PORT_ENV)
    copy = importlib.reload(copy)
    assert copy.ROOT == Path(contract.OPT_ML) and copy.serving_port() == contract.SERVING_PORT


def test_resource_config_is_sagemakers_homogeneous_cluster():
    document = contract.resource_config("algo-2", ["algo-1", "algo-2"], "ml.m5.large")
    assert document == {
        "current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0",
        "current_instance_type": "ml.m5.large", "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large",
                             "hosts": ["algo-1", "algo-2"]}]}
