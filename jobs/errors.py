"""The one error type `sam2-trt track-many` raises for a job it cannot start (a bad manifest, an output folder in
use, Ray missing), with the CLI exit code to use. A video that fails is not an error of the job: it is recorded
in the job summary with its reason, and the job goes on."""

from sam2_trt.core.errors import Sam2TrtError


class JobError(Sam2TrtError):
    BAD_INPUT = 3  # manifest, output folder or options
    MISSING_DEPENDENCY = 5  # Ray is not installed

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code
