"""The one error type the exporter raises for problems a user can fix, with the CLI exit code to use."""

from sam2_trt.core.errors import Sam2TrtError


class ExportError(Sam2TrtError):
    BAD_INPUT = 3  # config, checkpoint, image size or output directory is wrong
    VALIDATION_FAILED = 4  # an exported graph disagrees with PyTorch beyond its tolerance
    MISSING_DEPENDENCY = 5  # torch / sam2 / onnx not installed

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code
