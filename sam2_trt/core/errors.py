"""Errors a user can fix, each carrying the exit code the CLI uses for it."""


class Sam2TrtError(Exception):
    code = 3  # bad input


class ModelDirError(Sam2TrtError):
    """A model directory is missing, incomplete or inconsistent (its message says how to fix it)."""


class BackendUnavailable(Sam2TrtError, RuntimeError):
    """The requested backend cannot run here; the message names the missing package or device."""

    code = 5  # missing dependency


class VideoError(Sam2TrtError, ValueError):
    """A video (JPEG folder, video file or frame sequence) cannot be used; the message names it and what to do."""


class FrameDecodeError(VideoError):
    """One frame cannot be decoded; the other frames of the video can still be read."""

    def __init__(self, frame_index: int, path: str, reason: str, hint: str = "re-extract the frames or remove it"):
        self.frame_index = frame_index  # position in the video, 0-based
        self.path = path  # the JPEG file, or the video file
        self.reason, self.hint = reason, hint
        super().__init__(f"frame {frame_index} ({path}) cannot be decoded: {reason}; {hint}")

    def __reduce__(self):  # picklable (e.g. across processes) although __init__ takes more than the message
        return type(self), (self.frame_index, self.path, self.reason, self.hint)


class TrackingError(Sam2TrtError, RuntimeError):
    """A video-predictor call that its state cannot take (no prompts yet, unknown object); the state is unchanged."""
