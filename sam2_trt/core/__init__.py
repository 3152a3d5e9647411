"""The contract every stage shares, on the ground floor: it imports no stage (export, engines, runtime,
benchmarks, cli) and nothing heavier than numpy.

    specs.py          the four graphs: I/O names, shapes, dtypes, dynamic axes, tolerances, precision kinds
    metadata.py       an exported model directory's metadata file (written by export, read by everyone)
    engine_record.py  where TensorRT engines live, what each records, when one may be used
    graph_check.py    graph outputs against a reference, per output (export validation, engine check)
    errors.py         errors a user can fix, each with its CLI exit code
    files.py          atomic file writes
"""
