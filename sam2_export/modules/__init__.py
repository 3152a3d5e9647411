"""Thin, traceable wrappers around the official SAM 2 modules: one per exported graph.

Each wrapper holds references to the official submodules (never copies of their code or weights) and
swaps in a traceable forward where the official one does not export (complex RoPE, Python control flow,
parameter-only interpolation). Its forward takes and returns exactly the tensors of its GraphSpec.
"""

from .image_encoder import ImageEncoderGraph
from .memory_attention import MemoryAttentionGraph
from .memory_encoder import MemoryEncoderGraph
from .prompt_decoder import PromptDecoderGraph

GRAPH_MODULES = {
    "image_encoder": ImageEncoderGraph,
    "prompt_decoder": PromptDecoderGraph,
    "memory_attention": MemoryAttentionGraph,
    "memory_encoder": MemoryEncoderGraph,
}
