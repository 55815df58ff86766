"""Adjacency matrices of a skeleton layout (numpy only).

Convention of the reference (spec §1.11): a graph convolution computes
`out[..., w] = sum_v in[..., v] * A[k, v, w]`, i.e. column w of A_k lists what joint w receives.
Edges are (child, parent); `edge2mat` puts a 1 at row `parent`, column `child`, and
`normalize_columns` divides every column by its sum (A·D⁻¹), leaving zero columns untouched.
"""
from __future__ import annotations

from typing import Iterable, get_args

import numpy as np

from .config import GraphMode
from .skeleton import Layout, get_layout

__all__ = ["spatial_adjacency", "adjacency", "edge_matrix", "normalize_columns", "normalize_symmetric", "GraphMode",
           "GRAPH_MODES"]

GRAPH_MODES: tuple[str, ...] = get_args(GraphMode)


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


def normalize_symmetric(a: np.ndarray) -> np.ndarray:
    """D^-1/2 · A · D^-1/2 with D the column sums; rows and columns of zero-sum columns become zero."""
    col = a.sum(axis=0)
    scale = np.divide(1.0, np.sqrt(col, where=col > 0, out=np.ones_like(col)), out=np.zeros_like(col), where=col > 0)
    return scale[:, None] * a * scale[None, :]


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
    """Adjacency stack (K, V, V) float32 for a partition mode (the reference's `labeling_mode`).

    `spatial` (K = 3) is what every ST-TR preset uses; `distance` (K = 2) is (self, normalised 1-hop neighbours);
    the others are one matrix (K = 1): `uniform` = colnorm(I + neighbours), `distance*` = I - colnorm(neighbours),
    `DAD` = D^-1/2 (I + neighbours) D^-1/2, `DLD` = I - D^-1/2 neighbours D^-1/2, `fully_connected` = all ones
    (the reference's 'FC'). Column normalisation and D are over column sums, as the reference's `normalize_digraph`
    and `normalize_undigraph`.
    """
    layout = get_layout(layout)
    if mode == "spatial":
        return spatial_adjacency(layout)
    num = layout.num_joints
    inward = edge_matrix(layout.edges(), num)
    neighbours = inward + inward.T
    eye = np.eye(num)
    single = {
        "uniform": lambda: normalize_columns(eye + neighbours),
        "distance*": lambda: eye - normalize_columns(neighbours),
        "DAD": lambda: normalize_symmetric(eye + neighbours),
        "DLD": lambda: eye - normalize_symmetric(neighbours),
        "fully_connected": lambda: np.ones((num, num)),
    }
    if mode in single:
        return single[mode]()[None].astype(np.float32)
    if mode == "distance":
        return np.stack([eye, normalize_columns(neighbours)]).astype(np.float32)
    raise ValueError(f"unknown graph mode {mode!r}; expected one of {', '.join(GRAPH_MODES)}")
