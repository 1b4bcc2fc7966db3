r"""The rescaled normalised graph Laplacian used by Chebyshev (spectral) convolutions.

Defferrard et al., "Convolutional Neural Networks on Graphs with Fast Localized Spectral
Filtering" (NeurIPS 2016); COMA (Ranjan et al., ECCV 2018). With adjacency ``A`` and
degree matrix ``D``, the normalised Laplacian ``L = I - D^{-1/2} A D^{-1/2}`` has its
eigenvalues in ``[0, 2]``; rescaled with ``lambda_max = 2`` for the Chebyshev recursion:

.. math::
    \tilde L = \frac{2}{\lambda_{max}} L - I = -D^{-1/2} A D^{-1/2},
    \qquad \operatorname{spec}(\tilde L) \subset [-1, 1].

An isolated vertex (degree 0) gets an all-zero row and column.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["scaled_laplacian"]


def scaled_laplacian(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """``-D^{-1/2} A D^{-1/2}`` of a symmetric adjacency matrix.

    Args:
        adjacency: ``(V, V)`` symmetric sparse adjacency (non-negative weights).

    Returns:
        ``(V, V)`` float32 CSR matrix with eigenvalues in ``[-1, 1]``.
    """
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    scale = sp.diags(inv_sqrt)
    laplacian = -(scale @ adjacency @ scale)
    laplacian = sp.csr_matrix(laplacian, dtype=np.float32)
    laplacian.sort_indices()
    return laplacian
