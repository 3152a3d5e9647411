"""runtime.video.frames: frames decoded on demand equal the official decoding (PIL for JPEG folders, a plain
sequential PyAV decode for video files) in any access order, memory stays bounded, errors name what to fix."""

import gc
import pickle
import shutil
import time

import av
import numpy as np
import pytest
from PIL import Image

from sam2_trt.core.errors import FrameDecodeError, VideoError
from sam2_trt.runtime.video.frames import VideoFrames, open_video

N, H, W, GOP = 12, 48, 64, 4
# Mixed extensions and unpadded numbers: the official loader sorts by int(stem), so "10" comes after "2".
JPEG_NAMES = [f"{i}{('.jpg', '.jpeg', '.JPG', '.JPEG')[i % 4]}" for i in range(N)]
JUMPS = [5, 0, 11, 3, 3, 8, 1, 10, 6, 2, 9]


def scene(i: int, h: int = H, w: int = W) -> np.ndarray:
    """[h, w, 3] uint8: a frame-number-dependent background and a white square moving right."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (20 * i % 256, 255 - 15 * i, 60 + 10 * i)
    img[10:26, 4 * i:4 * i + 16] = 255
    return img


def write_video(path, codec: str, fmt=None):
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt, s.gop_size = W, H, "yuv420p", GOP
        if codec == "libx264":  # B-frames, so that decode order differs from presentation order
            s.options = {"keyint": str(GOP), "min-keyint": str(GOP), "scenecut": "0", "bframes": "2"}
        for i in range(N):
            c.mux(s.encode(av.VideoFrame.from_ndarray(scene(i), format="rgb24")))
        c.mux(s.encode())
    return path


def sequential_decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def pil_decode(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {"mp4": write_video(d / "clip.mp4", "libx264"), "mkv": write_video(d / "clip.mkv", "libx264"),
            "avi": write_video(d / "clip.avi", "mpeg4"), "h264": write_video(d / "clip.h264", "libx264", "h264")}


@pytest.fixture
def jpeg_dir(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i, name in enumerate(JPEG_NAMES):
        Image.fromarray(scene(i)).save(d / name, quality=95)
    (d / "notes.txt").write_text("not a frame")  # other files are ignored, as in the official loader
    return d


def wait_until(condition, timeout=5.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_jpeg_folder_frames_equal_pil_decoding_in_official_order(jpeg_dir):
    with open_video(jpeg_dir, prefetch=2) as frames:
        assert (len(frames), frames.num_frames, frames.height, frames.width) == (N, N, H, W)
        assert frames.source == str(jpeg_dir)
        for i in list(range(N)) + JUMPS:
            frame = frames.get(i)
            assert frame.dtype == np.uint8 and frame.shape == (H, W, 3) and frame.flags.c_contiguous
            np.testing.assert_array_equal(frame, pil_decode(jpeg_dir / JPEG_NAMES[i]))
            assert np.abs(frame.astype(int) - scene(i)).mean() < 4  # and it is the right frame
        assert not frame.flags.writeable  # shared with the cache


@pytest.mark.parametrize("prefetch", [0, 3])
@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi", "h264"])
def test_video_random_access_equals_sequential_decode(videos, kind, prefetch):
    reference = sequential_decode(videos[kind])
    assert len(reference) == N
    with open_video(videos[kind], prefetch=prefetch) as frames:
        assert (len(frames), frames.height, frames.width, frames.source) == (N, H, W, str(videos[kind]))
        for i in list(range(N)) + list(reversed(range(N))) + JUMPS:
            frame = frames.get(i)
            assert frame.flags.c_contiguous and frame.dtype == np.uint8
            np.testing.assert_array_equal(frame, reference[i], err_msg=f"frame {i}")


def test_frame_count_does_not_trust_container_metadata(videos):
    with av.open(str(videos["mkv"])) as c:
        assert c.streams.video[0].frames == 0  # what mkv reports
    with open_video(videos["mkv"]) as frames:
        assert frames.num_frames == N


def test_forward_playback_continues_the_decoder(videos):
    with open_video(videos["mp4"], prefetch=0) as frames:
        for i in range(N):
            frames.get(i)
        assert (frames._reader.seeks, frames._reader.decoded) == (1, N)


def test_reverse_playback_decodes_each_gop_once(videos):
    with open_video(videos["mp4"], prefetch=0) as frames:
        for i in reversed(range(N)):
            frames.get(i)
        assert (frames._reader.seeks, frames._reader.decoded) == (N // GOP, N)
    # the same walk with room for one frame per decode re-decodes the GOP for every frame
    with open_video(videos["mp4"], prefetch=0, cache_mb=1e-9) as frames:
        for i in reversed(range(N)):
            frames.get(i)
        assert frames._reader.decoded == N // GOP * (4 + 3 + 2 + 1)


@pytest.mark.parametrize("kind", ["jpeg", "mp4"])
def test_cache_stays_bounded(videos, jpeg_dir, kind):
    with open_video(jpeg_dir if kind == "jpeg" else videos["mp4"], prefetch=2) as frames:
        assert frames.capacity == 4  # prefetch + 2; for the mp4 also its GOP
        for i in list(range(N)) + list(reversed(range(N))) + JUMPS:
            frames.get(i)
            assert len(frames._cache) <= 4
        time.sleep(0.1)  # let the thread finish what it was asked to prefetch
        assert len(frames._cache) <= 4


def test_prefetch_decodes_ahead_in_the_direction_of_travel(jpeg_dir):
    with open_video(jpeg_dir, prefetch=3) as frames:
        frames.get(0)
        wait_until(lambda: {1, 2, 3} <= set(frames._cache))
        frames.get(9)
        frames.get(8)  # now going backwards
        assert frames._wanted == [7, 6, 5]
        wait_until(lambda: {7, 6, 5} <= set(frames._cache))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_truncated_jpeg_raises_on_get_and_other_frames_still_read(jpeg_dir, prefetch):
    bad = jpeg_dir / JPEG_NAMES[5]
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) * 3 // 4])  # the header survives: open_video accepts it, decoding fails
    with open_video(jpeg_dir, prefetch=prefetch) as frames:
        frames.get(4)
        if prefetch:  # the thread fails on frame 5 first; that failure must reach the caller's get(5)
            wait_until(lambda: 5 in frames._failed)
        with pytest.raises(FrameDecodeError) as e:
            frames.get(5)
        assert (e.value.frame_index, e.value.path) == (5, str(bad))
        assert f"frame 5 ({bad}) cannot be decoded" in str(e.value) and "re-extract" in str(e.value)
        assert isinstance(e.value, VideoError) and isinstance(e.value, ValueError)
        for i in (6, 4, 11, 0):
            np.testing.assert_array_equal(frames.get(i), pil_decode(jpeg_dir / JPEG_NAMES[i]))
        with pytest.raises(FrameDecodeError):
            frames.get(5)


def test_garbage_jpeg_is_named_at_open(jpeg_dir):
    (jpeg_dir / JPEG_NAMES[7]).write_bytes(b"\x00garbage" * 50)
    with pytest.raises(FrameDecodeError, match=r"frame 7 \(.*7\.JPEG\) cannot be decoded") as e:
        open_video(jpeg_dir)
    assert e.value.frame_index == 7


def test_frame_decode_error_pickles():
    e = pickle.loads(pickle.dumps(FrameDecodeError(3, "/x/3.jpg", "truncated")))
    assert (e.frame_index, e.path, str(e)) == (3, "/x/3.jpg", str(FrameDecodeError(3, "/x/3.jpg", "truncated")))


def test_mixed_sizes_name_the_first_frame_that_differs(jpeg_dir):
    Image.fromarray(scene(7, 32, 32)).save(jpeg_dir / JPEG_NAMES[7])
    Image.fromarray(scene(9, 40, 40)).save(jpeg_dir / JPEG_NAMES[9])
    with pytest.raises(VideoError, match=r"frame 7 \(.*7\.JPEG\) is 32x32 but frame 0 \(.*0\.jpg\) is 64x48"):
        open_video(jpeg_dir)


def test_non_integer_jpeg_name_is_named(jpeg_dir):
    shutil.copy(jpeg_dir / JPEG_NAMES[0], jpeg_dir / "cover.jpg")
    with pytest.raises(VideoError, match=r"cover\.jpg is not named by a frame number.*00000\.jpg"):
        open_video(jpeg_dir)


def test_folder_without_jpeg_frames(tmp_path):
    with pytest.raises(VideoError, match=r"no JPEG frames \(looked for .*\.jpg, \.jpeg, \.JPG, \.JPEG.*it is empty"):
        open_video(tmp_path)
    for i in range(4):
        Image.fromarray(scene(i)).save(tmp_path / f"{i:05d}.png")
    with pytest.raises(VideoError, match=r"it has 4 entries, e\.g\. 00000\.png, 00001\.png, 00002\.png\); .*ffmpeg"):
        open_video(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(VideoError, match=r"video path .*nope\.mp4 does not exist; pass a folder of JPEG frames"):
        open_video(tmp_path / "nope.mp4")


def test_file_pyav_cannot_open(tmp_path):
    (tmp_path / "clip.mp4").write_text("not a video")
    with pytest.raises(VideoError, match=r"PyAV cannot open .*clip\.mp4 as a video"):
        open_video(tmp_path / "clip.mp4")


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        c.mux(s.encode(frame))
        c.mux(s.encode())
    with pytest.raises(VideoError, match=r"sound\.wav has no video stream \(streams: audio\)"):
        open_video(path)


def test_video_with_zero_frames(tmp_path):
    path = tmp_path / "empty.avi"  # avi keeps a stream without packets (mp4 and mkv drop it)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height = W, H
        c.start_encoding()
    with pytest.raises(VideoError, match=r"empty\.avi has a video stream with 0 frames"):
        open_video(path)


def test_frame_sequences_are_wrapped_without_copies():
    stack = np.stack([scene(i) for i in range(N)])
    for source in (stack, list(stack), tuple(stack)):
        with open_video(source) as frames:
            assert (len(frames), frames.height, frames.width) == (N, H, W)
            assert frames._thread is None  # nothing to decode ahead
            for i in JUMPS:
                assert np.shares_memory(frames.get(i), stack[i])
                np.testing.assert_array_equal(frames.get(i), scene(i))


@pytest.mark.parametrize("source, error, match", [
    ([scene(0), scene(1).astype(np.float32)], VideoError, r"frame 1 of the sequence is \[48, 64, 3\] float32"),
    ([scene(0), scene(1)[..., 0]], VideoError, r"frame 1 of the sequence is \[48, 64\] uint8"),
    ([scene(0), scene(1, 32, 40)], VideoError, r"frame 1 of the sequence is 40x32 but frame 0 is 64x48"),
    (np.zeros((2, H, W), np.uint8), VideoError, r"\[N, H, W, 3\] uint8 RGB, got \[2, 48, 64\] uint8"),
    ([], VideoError, r"sequence of frames is empty"),
    ([scene(0), "1.jpg"], TypeError, r"frame 1 of the sequence is a str"),
    (42, TypeError, r"video_path must be a path .* got a int"),
    (b"clip.mp4", TypeError, r"got a bytes \(decode a bytes path with os\.fsdecode\)"),
])
def test_bad_sources(source, error, match):
    with pytest.raises(error, match=match):
        open_video(source)


def test_bad_indices(jpeg_dir):
    with open_video(jpeg_dir) as frames:
        for index in (-1, N, 100):
            with pytest.raises(IndexError, match=rf"frame index {index} is out of range: .* has 12 frames, valid "
                                                 rf"indices are 0\.\.11"):
                frames.get(index)
        for index in (1.0, "3", True, None):
            with pytest.raises(TypeError, match=r"frame index must be an int in \[0, 12\), got"):
                frames.get(index)
        np.testing.assert_array_equal(frames.get(np.int64(3)), frames.get(3))


def test_close_is_idempotent_and_ends_the_thread(videos):
    frames = open_video(videos["mp4"], prefetch=4)
    thread = frames._thread
    frames.get(0)
    assert thread.is_alive() and thread.daemon
    frames.close()
    assert not thread.is_alive() and frames._reader._container is None
    frames.close()
    with pytest.raises(VideoError, match="closed; call open_video"):
        frames.get(1)
    with open_video(videos["mp4"]) as frames:
        thread = frames._thread
    assert not thread.is_alive()


def test_forgotten_frames_are_freed_and_their_thread_ends(jpeg_dir):
    frames = open_video(jpeg_dir, prefetch=2)
    frames.get(0)
    thread = frames._thread
    del frames
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_failing_prefetch_thread_is_reported_on_get(jpeg_dir, monkeypatch):
    def broken(self):
        raise KeyError("bug")

    monkeypatch.setattr(VideoFrames, "_next_wanted", broken)
    with open_video(jpeg_dir, prefetch=2) as frames:
        frames._thread.join(timeout=5)
        with pytest.raises(RuntimeError, match=r"prefetch thread of .* failed \(KeyError\('bug'\)\); "
                                               r"open_video\(\.\.\., prefetch=0\)"):
            frames.get(0)


def test_concurrent_readers_get_the_right_frames(videos):
    import threading

    reference = sequential_decode(videos["mp4"])
    errors = []

    def read(seed):
        order = np.random.default_rng(seed).integers(0, N, 40)
        try:
            for i in order:
                np.testing.assert_array_equal(frames.get(int(i)), reference[i], err_msg=f"frame {i}")
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    with open_video(videos["mp4"], prefetch=3) as frames:
        threads = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]
