"""sam2-trt engines: the exported ONNX graphs -> TensorRT engines for one GPU and TensorRT version.

    sam2-trt build MODEL_DIR --precision fp16     # or: python -m engines build MODEL_DIR
    sam2-trt check MODEL_DIR                      # every engine against ONNX Runtime

profiles.py derives optimization profiles from runtime/specs.py, precision.py is the precision policy and
lower_precision.py applies it to the ONNX graph, builder.py builds and writes engines atomically with their
records (runtime/engine_record.py), check.py compares engines with ONNX Runtime. Needs tensorrt and polygraphy
to build; everything else here runs anywhere.
"""
