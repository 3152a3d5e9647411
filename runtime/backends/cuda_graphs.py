"""CUDA graphs for the TensorRT backend: which calls replay a captured graph, and the capture itself.

A call with the same input shapes as the previous call of that engine (the steady state of tracking) is
replayed from a CUDA graph over static buffers, which removes TensorRT's per-kernel launch cost. `GraphCache`
is the bookkeeping (pure, tested on the CPU): the first call of a shape set runs plainly, the second in a row
captures, later ones replay; a shape set whose capture failed runs plainly from then on. `CapturedCall` is one
capture (issue 19, items 1 and 2):

  * its static input buffers hold the call's own inputs before anything runs. TensorRT wants one uncaptured
    enqueue before a capture, and that enqueue reads the inputs: memory attention gathers with
    `memory_tpos_index`, so uninitialised memory there is an out-of-bounds read, and the illegal-address
    error it raises is sticky (every later CUDA call of the process fails);
  * the capture always ends (cudaStreamEndCapture in a finally): a stream left capturing fails every later call.
    An invalidated capture raises CaptureFailed, which the session answers by running that shape uncaptured.
"""

from __future__ import annotations

import sys
from collections import OrderedDict

MAX_CUDA_GRAPHS = 8  # captured shape sets kept per engine (least recently used first out)


class CaptureFailed(RuntimeError):
    """A call could not be captured into a CUDA graph; it can still run uncaptured."""


class GraphCache:
    """Per engine: what to do with a call of input shapes `key` ("replay", "capture" or "plain")."""

    def __init__(self, limit: int = MAX_CUDA_GRAPHS):
        self.limit = limit
        self._graphs: OrderedDict = OrderedDict()
        self._seen: set = set()
        self._uncapturable: set = set()
        self._last = None

    def plan(self, key) -> str:
        # Replay only when the context was last set up for these very shapes (the steady state); a shape change
        # runs uncaptured once, which reconfigures the context.
        same, self._last = key == self._last, key
        if key in self._uncapturable:
            return "plain"
        if same and key in self._graphs:
            self._graphs.move_to_end(key)
            return "replay"
        if same and key in self._seen:
            return "capture"
        self._seen.add(key)
        return "plain"

    def get(self, key) -> "CapturedCall":
        return self._graphs[key]

    def add(self, key, call) -> None:
        self._graphs[key] = call
        if len(self._graphs) > self.limit:
            self._graphs.popitem(last=False)

    def refuse(self, key) -> None:
        """`key` cannot be captured: run it plainly from now on."""
        self._uncapturable.add(key)

    def __len__(self) -> int:
        return len(self._graphs)


def capture_graph(stream, enqueue):
    """A cudaGraph_t of what `enqueue()` (-> bool, False: TensorRT could not enqueue) puts on `stream`, or
    CaptureFailed saying why; the stream is out of capture mode afterwards whatever happened."""
    from ..gpu.device import check, cuda_runtime

    rt = cuda_runtime()
    check(rt.cudaStreamBeginCapture(stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture")
    enqueued = False
    try:
        enqueued = enqueue()
    finally:
        err, graph = rt.cudaStreamEndCapture(stream.handle)
    if int(err) != 0 or not enqueued:
        if int(err) == 0:
            rt.cudaGraphDestroy(graph)
        rt.cudaGetLastError()  # an invalidated capture is not sticky: leave no error for the next call to find
        why = getattr(err, "name", str(err)) if int(err) != 0 else "TensorRT could not enqueue inside a capture"
        raise CaptureFailed(f"CUDA graph capture failed ({why})")
    return graph


class CapturedCall:
    """A CUDA graph of one execute_async_v3 over static buffers. inputs: {name: DeviceArray} of the call being
    captured; outputs: {name: (shape, dtype)}."""

    def __init__(self, context, inputs: dict, outputs: dict, stream):
        from ..gpu.device import DeviceArray, cuda_runtime

        rt = cuda_runtime()
        self._graph = self._exec = None
        self.inputs = {n: a.copy(stream) for n, a in inputs.items()}  # the warm-up below reads them
        self.outputs = {n: DeviceArray.empty(shape, dtype, stream) for n, (shape, dtype) in outputs.items()}
        for name, arr in {**self.inputs, **self.outputs}.items():
            context.set_tensor_address(name, arr.ptr)
        # TensorRT's advice: enqueue once uncaptured after the shapes are set (shape-dependent setup is not
        # capturable), then capture. Its results are discarded: launch() runs the graph.
        if not context.execute_async_v3(stream.handle):
            raise RuntimeError("TensorRT failed to enqueue the engine before a CUDA graph capture")
        self._graph = capture_graph(stream, lambda: context.execute_async_v3(stream.handle))
        err, self._exec = rt.cudaGraphInstantiate(self._graph, 0)
        if int(err) != 0:
            self._exec = None
            raise CaptureFailed(f"cudaGraphInstantiate failed ({getattr(err, 'name', err)})")

    def launch(self, dev_inputs: dict, stream) -> dict:
        """Copy the inputs in, replay, and hand out copies of the outputs (callers keep them across calls)."""
        from ..gpu.device import DeviceArray, check, cuda_runtime, memcpy

        for name, src in dev_inputs.items():
            memcpy(self.inputs[name].ptr, src.ptr, src.nbytes, "d2d", stream)
        check(cuda_runtime().cudaGraphLaunch(self._exec, stream.handle), "cudaGraphLaunch")
        out = {}
        for name, buf in self.outputs.items():
            out[name] = DeviceArray.empty(buf.shape, buf.dtype, stream)
            memcpy(out[name].ptr, buf.ptr, buf.nbytes, "d2d", stream)
        return out

    def __del__(self):
        if sys.is_finalizing():
            return
        try:
            from ..gpu.device import cuda_runtime

            rt = cuda_runtime()
            if getattr(self, "_exec", None) is not None:
                rt.cudaGraphExecDestroy(self._exec)
            if getattr(self, "_graph", None) is not None:
                rt.cudaGraphDestroy(self._graph)
        except Exception:  # the context is gone
            pass

