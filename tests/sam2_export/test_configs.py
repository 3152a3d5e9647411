import pytest

from sam2_trt.export.configs import ALL_MODELS, resolve_model_name
from sam2_trt.export.errors import ExportError


@pytest.mark.parametrize("name, expected", [
    ("sam2.1_hiera_t", "sam2.1_hiera_t"),
    ("sam2.1_hiera_tiny", "sam2.1_hiera_t"),
    ("sam2.1_hiera_base_plus", "sam2.1_hiera_b+"),
    ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_b+"),
    ("sam2/sam2_hiera_l.yaml", "sam2_hiera_l"),
    ("sam2_hiera_large", "sam2_hiera_l"),
    ("SAM2_HIERA_S", "sam2_hiera_s"),
    ("sam2.1_hiera_small.pt", "sam2.1_hiera_s"),
])
def test_names_resolve(name, expected):
    assert resolve_model_name(name).short == expected


def test_every_official_model_round_trips_through_its_names():
    assert len(ALL_MODELS) == 8
    for m in ALL_MODELS:
        for alias in (m.short, m.long, m.config_path):
            assert resolve_model_name(alias) == m


def test_official_config_paths_exist_in_the_sam2_package():
    sam2 = pytest.importorskip("sam2")
    from pathlib import Path

    root = Path(sam2.__file__).parent
    for m in ALL_MODELS:
        assert (root / m.config_path).is_file(), m.config_path


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ExportError) as e:
        resolve_model_name("sam3_hiera_t")
    msg = str(e.value)
    assert "'sam3_hiera_t'" in msg
    for m in ALL_MODELS:
        assert m.short in msg
