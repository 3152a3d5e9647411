"""The benchmarks (not tests), run as `sam2-trt bench NAME` (their options: sam2_trt.cli.bench); each writes its
JSON under --results, by default benchmarks/results in the current directory."""
