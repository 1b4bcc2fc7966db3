"""``deep3dmm train --hierarchy FILE.npz``: train on a hierarchy built by ``deep3dmm hierarchy``."""

import pytest

from deep3dmm.cli import main
from deep3dmm.errors import ConfigError, TopologyMismatchError
from deep3dmm.mesh import HierarchyConfig, MeshHierarchy
from deep3dmm.train import load_config, train
from deep3dmm.train.checkpoint import RunFiles


@pytest.fixture(scope="module")
def hierarchy_file(spheres, tmp_path_factory):
    path = tmp_path_factory.mktemp("h") / "h.npz"
    argv = ["hierarchy", str(spheres.path / "template.ply"), "--factors", "4", "4"]
    assert main([*argv, "--spiral-length", "9", "7", "5", "--out", str(path)]) == 0
    return path


def test_train_on_hierarchy_file(spheres, hierarchy_file, tmp_path, tiny_config):
    config_path = tmp_path / "c.toml"
    from deep3dmm.train import save_config

    config = tiny_config(spheres.path, epochs=1)
    save_config(config.replace(hierarchy={"factors": [4, 4], "spiral_length": 9}), config_path)
    run = tmp_path / "run"
    argv = ["train", "--config", str(config_path), "--out", str(run), "--quiet", "--no-eval"]
    # The file's parameters (spiral lengths 9, 7, 5) contradict the configured ones (9).
    assert main([*argv, "--hierarchy", str(hierarchy_file)]) == 2
    # Without hierarchy options, the file's parameters are the run's.
    save_config(config.replace(hierarchy=HierarchyConfig().to_dict()), config_path)
    assert main([*argv, "--hierarchy", str(hierarchy_file)]) == 0
    stored = MeshHierarchy.load(RunFiles(run).hierarchy)
    assert stored.hash == MeshHierarchy.load(hierarchy_file).hash
    assert load_config(RunFiles(run).config).hierarchy == HierarchyConfig(
        factors=(4, 4), spiral_length=(9, 7, 5)
    )


def test_hierarchy_of_another_template_is_refused(spheres, tmp_path, tiny_config):
    from deep3dmm.mesh import shapes

    other = MeshHierarchy.build(shapes.icosphere(1), factors=(2,))
    with pytest.raises(TopologyMismatchError, match="not the dataset's template"):
        train(tiny_config(spheres.path, epochs=1), tmp_path / "r", hierarchy=other, quiet=True)
    assert not (tmp_path / "r").exists()


def test_hierarchy_config_matches_build_parameters():
    config = HierarchyConfig.from_options({"factors": [4, 2], "spiral_length": [9, 7, 5]})
    assert config.params(162) == {
        "factors": [4, 2], "spiral_length": [9, 7, 5], "spiral_dilation": [1, 1, 1],
        "reference_vertices": None, "seed": 0,
    }  # fmt: skip
    assert HierarchyConfig.from_params(config.params()) == config
    with pytest.raises(ConfigError, match="unknown hierarchy parameter"):
        HierarchyConfig.from_options({"factor": 4})
