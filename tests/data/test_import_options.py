"""Which options an importer takes is the library's answer (the CLI only spells the flags)."""

import pytest

from deep3dmm.data.importers import import_dataset, importer_options
from deep3dmm.errors import ConfigError


def test_importer_options_come_from_the_signatures():
    assert "stride" in importer_options("dfaust") and "stride" not in importer_options("coma")
    assert {"skip_bad", "workers"} <= set(importer_options("npy"))


def test_library_refuses_options_that_do_not_apply(tmp_path):
    with pytest.raises(ConfigError, match="option.s. stride do not apply to source 'coma'"):
        import_dataset("coma", tmp_path, tmp_path / "out", stride=2)
    assert not (tmp_path / "out").exists()
