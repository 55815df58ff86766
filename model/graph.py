"""Adjacency matrices of a skeleton layout (numpy only).

Convention of the reference (spec §1.11): a graph convolution computes
`out[..., w] = sum_v in[..., v] * A[k, v, w]`, i.e. column w of A_k lists what joint w receives.
Edges are (child, parent); `edge2mat` puts a 1 at row `parent`, column `child`, and
`normalize_columns` divides every column by its sum (A·D⁻¹), leaving zero columns untouched.
"""
from __future__ import annotations

from typing import Iterable, Literal

import numpy as np

from .skeleton import Layout, get_layout

__all__ = ["spatial_adjacency", "adjacency", "edge_matrix", "normalize_columns", "GraphMode"]

GraphMode = Literal["spatial", "uniform", "distance", "fully_connected"]


def edge_matrix(edges: Iterable[tuple[int, int]], num_joints: int) -> np.ndarray:
    """(V, V) matrix with a 1 at [parent, child] for each (child, parent) edge."""
    a = np.zeros((num_joints, num_joints), dtype=np.float64)
    for child, parent in edges:
        a[parent, child] = 1.0
    return a


def normalize_columns(a: np.ndarray) -> np.ndarray:
    """A·D⁻¹ with D the column sums; all-zero columns stay zero."""
    col = a.sum(axis=0)
    scale = np.divide(1.0, col, out=np.zeros_like(col), where=col > 0)
    return a * scale[None, :]


def spatial_adjacency(layout: Layout | str) -> np.ndarray:
    """The 3-subset spatial partition of the reference: (3, V, V) float32.

    A₀ = I (each joint keeps itself); A₁ = inward (each joint receives its parent);
    A₂ = outward (each joint receives the mean of its children).
    """
    layout = get_layout(layout)
    num = layout.num_joints
    inward = edge_matrix(layout.edges(), num)
    a = np.stack([np.eye(num), normalize_columns(inward), normalize_columns(inward.T)])
    return a.astype(np.float32)


def adjacency(layout: Layout | str, mode: GraphMode = "spatial") -> np.ndarray:
    """Adjacency stack (K, V, V) float32 for a partition mode.

    `spatial` is what every ST-TR preset uses; `uniform` is one subset (self + neighbours, normalised);
    `distance` is two subsets (self, normalised 1-hop neighbours); `fully_connected` is all ones.
    """
    layout = get_layout(layout)
    if mode == "spatial":
        return spatial_adjacency(layout)
    num = layout.num_joints
    inward = edge_matrix(layout.edges(), num)
    neighbours = inward + inward.T
    if mode == "uniform":
        return normalize_columns(np.eye(num) + neighbours)[None].astype(np.float32)
    if mode == "distance":
        return np.stack([np.eye(num), normalize_columns(neighbours)]).astype(np.float32)
    if mode == "fully_connected":
        return np.ones((1, num, num), dtype=np.float32)
    raise ValueError(f"unknown graph mode {mode!r}; expected one of spatial, uniform, distance, fully_connected")
