import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from deep3dmm.errors import ConfigError
from deep3dmm.train.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    config_to_toml,
    load_config,
    save_config,
)


def test_toml_round_trip(tmp_path):
    config = RunConfig(
        data=DataConfig(path="/data/coma", protocol="extrapolation", holdout="bareteeth"),
        model=ModelConfig.from_preset("coma", conv="cheb", latent=8, channels=(16, 16, 16, 32)),
        optim=OptimConfig(optimizer="sgd", lr=8e-3, momentum=0.9),
        train=TrainConfig(epochs=300, batch_size=16, seed=3),
    )
    save_config(config, tmp_path / "c.toml")
    assert load_config(tmp_path / "c.toml") == config
    text = config_to_toml(config)
    assert "[model]" in text and tomllib.loads(text)["model"]["channels"] == [16, 16, 16, 32]
    assert "reference_vertices" not in text  # None options are left out


def test_missing_options_take_defaults(tmp_path):
    (tmp_path / "c.toml").write_text("[train]\nepochs = 7\n")
    config = load_config(tmp_path / "c.toml")
    assert config.train.epochs == 7 and config.train.batch_size == TrainConfig().batch_size
    assert config.optim == OptimConfig()


@pytest.mark.parametrize(
    "text,message",
    [
        ("[trian]\nepochs = 3\n", "unknown config section"),
        ("[train]\nepoch = 3\n", "unknown option.*epoch.*known options"),
        ("[train]\nepochs = 'ten'\n", "train.epochs must be an integer"),
        ("[train]\nepochs = 0\n", "train.epochs must be >= 1"),
        ("[model]\nconv = 'gcn'\n", "model.conv must be one of 'spiral', 'cheb'"),
        ("[model]\nchannels = [16, 'a']\n", "list of integers"),
        ("[optim]\noptimizer = 'rmsprop'\n", "optim.optimizer must be one of"),
        ("[optim]\nlr = -1.0\n", "optim.lr must be a positive"),
        ("[data]\nprotocol = 'leave-one-out'\n", "data.protocol must be one of"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_option(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/run.toml")


def test_replace_checks_types():
    config = RunConfig().replace(train={"epochs": 4}, model={"latent": 8})
    assert config.train.epochs == 4 and config.model.latent == 8
    with pytest.raises(ConfigError, match="train.batch_size must be an integer"):
        RunConfig().replace(train={"batch_size": 2.5})


def test_model_presets_and_overrides():
    assert ModelConfig.from_preset("coma").preset == "coma"
    assert ModelConfig().preset == "deep3dmm-spiral"  # the defaults are the project's model
    config = ModelConfig.from_preset("coma", top_k=[4, 8])
    assert config.top_k == (4, 8) and config.conv == "cheb" and config.preset == ""
    with pytest.raises(ConfigError, match="unknown model preset"):
        ModelConfig.from_preset("coma2")


def test_cli_defaults_embedded_and_published():
    from deep3dmm.cli import build_parser
    from deep3dmm.commands.train import QUICK_TRAIN, build_config

    parser = build_parser()
    quick = build_config(parser.parse_args(["train"]), None)
    assert quick.model.preset == "deep3dmm-spiral" and quick.data.path == ""
    assert quick.train.epochs == QUICK_TRAIN["epochs"] and quick.optim.optimizer == "adam"
    full = build_config(parser.parse_args(["train", "--data", "/d", "--preset", "coma"]), None)
    assert full.train.epochs == 300 and full.train.batch_size == 32
    assert full.model.preset == "coma" and full.data.path == "/d"
