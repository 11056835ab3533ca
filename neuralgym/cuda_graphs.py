"""CUDA graphs for the world model's launch-bound calls (small batches on a fast GPU).

`WorldModel.enable_cuda_graphs()` replays the denoiser's backbone and the frame decoder from
graphs captured once per input shape, so a dream step launches a few graphs instead of
hundreds of kernels. The first call of each batch size captures (slow); every later one of
that size replays.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CudaGraphed:
    """`fn(*tensors) -> tensor` replayed from a CUDA graph, captured once per input signature
    (shapes, dtypes, autocast state). Inputs are copied into the graph's static buffers and
    the output is cloned out, so every captured shape can share one memory pool."""

    def __init__(self, fn: Callable[..., torch.Tensor], warmup: int = 2):
        self.fn = fn
        self.warmup = warmup
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list, torch.Tensor]] = {}

    def __call__(self, *args: torch.Tensor | None) -> torch.Tensor:
        key = (torch.is_autocast_enabled("cuda"),
               *(None if a is None else (tuple(a.shape), a.dtype) for a in args))
        if key not in self.graphs:
            self.graphs[key] = self._capture(args)
        graph, static_in, static_out = self.graphs[key]
        for buf, a in zip(static_in, args, strict=True):
            if buf is not None:
                buf.copy_(a)
        graph.replay()
        return static_out.clone()

    def _capture(self, args: tuple[torch.Tensor | None, ...]
                 ) -> tuple[torch.cuda.CUDAGraph, list, torch.Tensor]:
        static_in = [None if a is None else a.detach().clone(memory_format=torch.contiguous_format)
                     for a in args]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm up off the capture (lazy init, workspaces)
            for _ in range(self.warmup):
                self.fn(*static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            static_out = self.fn(*static_in)
        return graph, static_in, static_out
