import pytest


@pytest.fixture(scope="session")
def tiny1024_dir(tiny_checkpoint, tmp_path_factory):
    """sam2.1_hiera_t (seeded random weights) exported at 1024: the official image predictor only runs at 1024."""
    from sam2_export.exporter import export_model

    out = tmp_path_factory.mktemp("models") / "tiny1024"
    export_model("sam2.1_hiera_t", out, checkpoint=tiny_checkpoint, image_size=1024, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def official_tiny(tiny_checkpoint):
    """The official SAM2Base for the same checkpoint, built as build_sam2 does by default."""
    from tests.official_reference import build_official

    return build_official("configs/sam2.1/sam2.1_hiera_t.yaml", tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny512_dir(tiny_checkpoint, tmp_path_factory):
    """sam2.1_hiera_t exported at 512: fast, for tests that are not about parity with the 1024-only image predictor."""
    from sam2_export.exporter import export_model

    out = tmp_path_factory.mktemp("models") / "tiny512"
    export_model("sam2.1_hiera_t", out, checkpoint=tiny_checkpoint, image_size=512, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A short synthetic clip as a folder of <int>.jpg frames (CLIP_FRAMES frames of CLIP_H x CLIP_W)."""
    from tests.runtime.video_reference import write_jpeg_video

    return write_jpeg_video(tmp_path_factory.mktemp("clip") / "frames")
