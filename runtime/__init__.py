"""sam2-trt runtime: SAM 2 inference on exported graphs, without PyTorch.

Importing this package is cheap: the predictors and backends load their dependencies (onnxruntime,
TensorRT, CUDA) when first used.
"""
