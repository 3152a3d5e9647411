"""sam2-trt engines: the exported ONNX graphs -> TensorRT engines for one GPU and TensorRT version.

    sam2-trt build MODEL_DIR --precision fp16     # the command (sam2_trt.cli.engines)
    sam2-trt check MODEL_DIR                      # every engine against ONNX Runtime

    import sam2_trt.engines
    sam2_trt.engines.enable_build_on_first_use()  # in an app: missing engines are built when first needed

profiles.py derives optimization profiles from the graph specs (sam2_trt.core.specs), precision.py is the
precision policy and lower_precision.py applies it to the ONNX graph, builder.py builds and writes engines
atomically with their records (sam2_trt.core.engine_record), check.py compares engines with ONNX Runtime,
first_use.py is the builder an application installs in the runtime. Needs tensorrt and polygraphy to build;
everything else here runs anywhere.
"""


def enable_build_on_first_use() -> None:
    """See first_use.enable_build_on_first_use."""
    from .first_use import enable_build_on_first_use as enable

    enable()
