# cython: language_level=3
"""Test shims for the activation kernels of ``_activations.pxd``."""
from cython cimport floating
from cymlp._activations cimport act_forward, act_backward, ACT_SWIGLU


def forward(int act, const floating[:, ::1] K, floating[:, ::1] A,
            double slope=0.01, double beta=1.0):
    """A = g(K); K must have 2 * A.shape[1] columns for SwiGLU."""
    if K.shape[0] != A.shape[0] or K.shape[1] != A.shape[1] * (2 if act == ACT_SWIGLU else 1):
        raise ValueError("forward: incompatible shapes")
    with nogil:
        act_forward(act, A.shape[0], A.shape[1], &K[0, 0], &A[0, 0],
                    <floating> slope, <floating> beta)


def backward(int act, const floating[:, ::1] K, const floating[:, ::1] A,
             const floating[:, ::1] dA, floating[:, ::1] dK,
             double slope=0.01, double beta=1.0):
    """dK = dA * g'(K)"""
    if (K.shape[0] != A.shape[0] or dA.shape[0] != A.shape[0] or dK.shape[0] != A.shape[0]
            or dA.shape[1] != A.shape[1] or dK.shape[1] != K.shape[1]
            or K.shape[1] != A.shape[1] * (2 if act == ACT_SWIGLU else 1)):
        raise ValueError("backward: incompatible shapes")
    with nogil:
        act_backward(act, A.shape[0], A.shape[1], &K[0, 0], &A[0, 0], &dA[0, 0],
                     &dK[0, 0], <floating> slope, <floating> beta)
