"""The compiled training step: forward, loss, backward and the optimizer update in one call (numba).

Imported only by :mod:`dialnet.train.compiled`, and only when numba is
installed (``pip install 'dialnet[fast]'``): importing this module imports
numba. Every function is compiled once per dtype and cached on disk
(``cache=True``), so only the very first run on a machine pays the compile.

The arithmetic is the NumPy path's, operation for operation, in the dials'
dtype (a Python float becomes the dtype first, as NumPy does): the products
go to NumPy's own BLAS (:func:`numpy_gemm`, the same calls as ``np.dot``), the
element-wise work runs in loops that the NumPy path spreads over a few
whole-array calls. What is left to rounding: ``exp`` and ``tanh`` (libm,
where NumPy has its own SIMD versions), and the order of the bias, loss and
softmax sums. Nothing here depends on timing or threads: the same inputs
give the same bits on every run.

Codes shared with :mod:`dialnet.train.compiled`:

- activations: 0 identity, 1 sigmoid, 2 tanh, 3 relu, 4 leaky relu, 5 softmax;
- losses: 0 softmax + cross-entropy on class labels, 1 sigmoid + binary
  cross-entropy (both fused: the delta is ``dL/dz``), 2 squared error
  (the delta is ``dL/dP``, then the output activation's backward);
- optimizers: 0 SGD, 1 Adam/AdamW, 2 RMSprop; ``c`` holds each one's
  constants in the order its function here reads them (written by
  ``CompiledStep._sync`` and ``_constants``);
- ``hyper``: the largest ``z`` with a finite ``exp(z)``, and the L2 factor;
- modes: 0 backprop only, 1 update only, 2 backprop then, if the loss is
  finite, update.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from threadpoolctl import threadpool_info

IDENTITY, SIGMOID, TANH, RELU, LEAKY, SOFTMAX = 0, 1, 2, 3, 4, 5
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR = 0, 1, 2
SGD, ADAM, RMSPROP = 0, 1, 2
BACKPROP, UPDATE, BOTH = 0, 1, 2
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # the CBLAS enums


@intrinsic
def _call(typingctx, address, order, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """Call the C function at ``address`` (an integer) with the other arguments: a ``cblas_?gemm``.

    The address is a plain argument, not a constant baked into the code, so
    the kernels that use it can be cached on disk, and a call costs nothing
    more than passing one more integer.
    """
    signature = types.void(address, order, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)

    def codegen(context, builder, sig, args):
        function_type = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in sig.args[1:]])
        builder.call(builder.inttoptr(args[0], function_type.as_pointer()), args[1:])
        return context.get_dummy_value()

    return signature, codegen


@functools.lru_cache(maxsize=4)
def numpy_gemm(dtype):
    """``(address, 64-bit integers)`` of NumPy's ``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64); None if not found.

    The kernels call the very BLAS that ``np.dot`` calls (same library, same
    threads, the same bits for the same product), where numba's own
    ``np.dot`` would call SciPy's copy, a different OpenBLAS build that is up
    to a quarter slower on some small shapes. Found for the OpenBLAS that
    NumPy's wheels bundle (``scipy_cblas_?gemm64_``) or a plain
    ``cblas_?gemm``; other BLAS builds (Accelerate, MKL under other names)
    leave the NumPy path to train.
    """
    letter = "s" if np.dtype(dtype) == np.float32 else "d"  # (looked up once per dtype: threadpoolctl reads /proc)
    numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
    for info in threadpool_info():
        path = info.get("filepath") or ""
        if info.get("user_api") != "blas" or not os.path.abspath(path).startswith(numpy_dir):
            continue
        try:
            library = _LIBRARIES.setdefault(path, ctypes.CDLL(path))  # kept loaded while the address is in use
        except OSError:
            return None
        for name, wide in ((f"scipy_cblas_{letter}gemm64_", True), (f"cblas_{letter}gemm64_", True), (f"cblas_{letter}gemm", False)):
            function = getattr(library, name, None)
            if function is not None:
                return ctypes.cast(function, ctypes.c_void_p).value, wide
    return None


_LIBRARIES = {}


@njit(cache=True, nogil=True, error_model="numpy")
def _product(gemm, wide, A, trans_a, B, trans_b, C):
    """``C = op(A) @ op(B)`` (``op``: transposed when asked), all C-ordered, by NumPy's BLAS at address ``gemm``.

    Every product of a step has the batch along ``A``'s rows. For a batch of
    one row (online learning), where a BLAS call costs more than the
    arithmetic, the product runs as a loop here instead.
    """
    m, n = C.shape
    k = A.shape[0] if trans_a else A.shape[1]
    if A.shape[0] == 1:
        _one_row_product(A, trans_a, B, trans_b, C)
        return
    one, zero = _cast(1.0, C), _cast(0.0, C)
    order, ta, tb = np.int32(ROW_MAJOR), np.int32(TRANS if trans_a else NO_TRANS), np.int32(TRANS if trans_b else NO_TRANS)
    a, b, c = A.ctypes.data, B.ctypes.data, C.ctypes.data
    if wide:
        _call(gemm, order, ta, tb, np.int64(m), np.int64(n), np.int64(k), one, a, np.int64(A.shape[1]),
              b, np.int64(B.shape[1]), zero, c, np.int64(n))
    else:
        _call(gemm, order, ta, tb, np.int32(m), np.int32(n), np.int32(k), one, a, np.int32(A.shape[1]),
              b, np.int32(B.shape[1]), zero, c, np.int32(n))


@njit(cache=True, nogil=True, error_model="numpy")
def _one_row_product(A, trans_a, B, trans_b, C):
    """:func:`_product` when ``A`` has one row: a row times a matrix, an outer product, or a matrix times a row."""
    m, n = C.shape
    if trans_a:  # C = a.T b: the outer product of A's row and B's row
        for i in range(m):
            a = A[0, i]
            for j in range(n):
                C[i, j] = a * B[0, j]
    elif trans_b:  # C[0, j] = A[0, :] . B[j, :]
        for j in range(n):
            s = _cast(0.0, C)
            for p in range(A.shape[1]):
                s += A[0, p] * B[j, p]
            C[0, j] = s
    else:  # C[0, :] = sum_p A[0, p] B[p, :]
        for j in range(n):
            C[0, j] = 0
        for p in range(A.shape[1]):
            a = A[0, p]
            for j in range(n):
                C[0, j] += a * B[p, j]


@njit(cache=True, nogil=True, error_model="numpy")
def _view(work, offset, rows, cols):
    """Rows x cols of the flat ``work`` array from ``offset`` on, as a C-ordered matrix (a view)."""
    return work[offset : offset + rows * cols].reshape((rows, cols))


@njit(cache=True, nogil=True, error_model="numpy")
def _activate(a, b, code, alpha, limit, one):
    """``a = f(a + b)`` in place, row by row, in one pass (``b``: the biases, or empty for none)."""
    m, n = a.shape
    zero = one - one
    if b.shape[0] == 0:
        b = np.zeros(n, a.dtype)  # (only the fused losses' second pass, on the narrow output layer)
    if code == IDENTITY:
        for i in range(m):
            for j in range(n):
                a[i, j] = a[i, j] + b[j]
    elif code == SIGMOID:
        for i in range(m):
            for j in range(n):
                e = np.exp(min(-(a[i, j] + b[j]), limit))  # exp(-z) stays finite, as in layers.Sigmoid
                a[i, j] = one / (e + one)
    elif code == TANH:
        for i in range(m):
            for j in range(n):
                a[i, j] = np.tanh(a[i, j] + b[j])
    elif code == RELU:
        for i in range(m):
            for j in range(n):
                z = a[i, j] + b[j]
                a[i, j] = z if (z > zero or z != z) else zero  # max(z, 0): NaN stays NaN, as with np.maximum
    elif code == LEAKY:
        for i in range(m):
            for j in range(n):
                z = a[i, j] + b[j]
                a[i, j] = z * (one if z > zero else alpha)
    elif code == SOFTMAX:
        for i in range(m):
            for j in range(n):
                a[i, j] = a[i, j] + b[j]
            top = a[i, 0]
            for j in range(1, n):
                top = max(top, a[i, j])
            s = zero
            for j in range(n):
                a[i, j] = np.exp(a[i, j] - top)
                s += a[i, j]
            for j in range(n):
                a[i, j] = a[i, j] / s


@njit(cache=True, nogil=True, error_model="numpy")
def _slope(d, a, code, alpha, one, gb):
    """``dz = da * f'(z)`` in place on ``d``, from the layer's output ``a``; ``gb`` gets ``dz`` summed over the rows."""
    m, n = d.shape
    zero = one - one
    for j in range(n):
        gb[j] = zero
    if code == IDENTITY:
        for i in range(m):
            for j in range(n):
                gb[j] += d[i, j]
    elif code == SIGMOID:
        for i in range(m):
            for j in range(n):
                v = (one - a[i, j]) * a[i, j] * d[i, j]
                d[i, j] = v
                gb[j] += v
    elif code == TANH:
        for i in range(m):
            for j in range(n):
                v = (one - a[i, j] * a[i, j]) * d[i, j]
                d[i, j] = v
                gb[j] += v
    elif code == RELU:
        for i in range(m):
            for j in range(n):
                v = d[i, j] * (one if a[i, j] > zero else zero)
                d[i, j] = v
                gb[j] += v
    elif code == LEAKY:
        for i in range(m):
            for j in range(n):
                v = d[i, j] * (one if a[i, j] > zero else alpha)
                d[i, j] = v
                gb[j] += v
    elif code == SOFTMAX:
        for i in range(m):
            s = zero
            for j in range(n):
                s += d[i, j] * a[i, j]
            for j in range(n):
                v = (d[i, j] - s) * a[i, j]
                d[i, j] = v
                gb[j] += v


@njit(cache=True, nogil=True, error_model="numpy")
def _cast(x, like):
    """``x`` in the dtype of the array ``like`` (as NumPy turns a Python float in ``array * x``)."""
    out = np.empty(1, like.dtype)
    out[0] = x
    return out[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _delta(P, labels, Y, loss, d):
    """The loss's delta into ``d``: ``dL/dz`` (fused) or ``dL/dP``, for the unweighted mean."""
    m, k = P.shape
    one = _cast(1.0, P)
    if loss == CROSS_ENTROPY:
        scale = _cast(1.0 / m, P)
        for i in range(m):
            c = labels[i]
            for j in range(k):
                d[i, j] = P[i, j] * scale
            d[i, c] = (P[i, c] - one) * scale
    elif loss == BINARY_CROSS_ENTROPY:
        scale = _cast(1.0 / (m * k), P)
        for i in range(m):
            for j in range(k):
                d[i, j] = (P[i, j] - Y[i, j]) * scale
    else:
        scale = _cast(2.0 / (m * k), P)
        for i in range(m):
            for j in range(k):
                d[i, j] = (P[i, j] - Y[i, j]) * scale


@njit(cache=True, nogil=True, error_model="numpy")
def _mean(totals, w, norm, per_row):
    """The loss value from each row's summed loss ``totals``: the mean over every number, or with sample
    weights ``w`` the weighted mean of the rows' means (``per_row`` numbers a row) over ``norm``."""
    m = totals.shape[0]
    total = 0.0
    if w.shape[0] == 0:
        for i in range(m):
            total += totals[i]
        return total / (m * per_row)
    for i in range(m):
        total += float(w[i]) * (totals[i] / per_row)
    return total / norm


@njit(cache=True, nogil=True, error_model="numpy")
def _cross_entropy(Z, labels, w, norm):
    """Softmax cross-entropy from the logits, ``logsumexp(z) - z[true]`` per row (exact where p underflows)."""
    m, k = Z.shape
    totals = np.empty(m)
    for i in range(m):
        top = Z[i, 0]
        for j in range(1, k):
            top = max(top, Z[i, j])
        s = 0.0
        for j in range(k):
            s += math.exp(float(Z[i, j] - top))
        totals[i] = math.log(s) - float(Z[i, labels[i]] - top)
    return _mean(totals, w, norm, 1)


@njit(cache=True, nogil=True, error_model="numpy")
def _logit_loss(Z, Y, w, norm):
    """Binary cross-entropy from the logits: ``max(z, 0) - z y + log1p(exp(-|z|))``."""
    m, k = Z.shape
    totals = np.zeros(m)
    for i in range(m):
        for j in range(k):
            z, y = float(Z[i, j]), float(Y[i, j])
            totals[i] += max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z)))
    return _mean(totals, w, norm, k)


@njit(cache=True, nogil=True, error_model="numpy")
def _squared_error(P, Y, w, norm):
    m, k = P.shape
    totals = np.zeros(m)
    for i in range(m):
        for j in range(k):
            diff = float(P[i, j]) - float(Y[i, j])
            totals[i] += diff * diff
    return _mean(totals, w, norm, k)


@njit(cache=True, nogil=True, error_model="numpy")
def _backprop(gemm, wide, X, index, start, stop, labels, Y, weights, sizes, acts, alphas, loss, params, grads, work, cap,
              hyper):
    """Forward, loss and backward of rows ``start:stop`` (through ``index`` when it is not empty).

    With sample ``weights`` (empty: none) the loss is the weighted mean
    ``sum w_i l_i / sum w_i`` and each row's delta is scaled by
    ``w_i n / sum w``, as :meth:`dialnet.core.losses.Loss.value_and_delta` does.
    """
    m = stop - start
    w = weights[start:stop]
    norm = 0.0
    for i in range(w.shape[0]):
        norm += float(w[i])
    if norm <= 0.0:
        norm = 1.0  # rows that all weigh 0 teach nothing: value 0, delta 0
    n_layers = sizes.shape[0] - 1
    one, limit = _cast(1.0, params), hyper[0]
    n0 = sizes[0]
    if index.shape[0]:  # a shuffled epoch: the batch's rows gathered into the work area
        xb = _view(work, 0, m, n0)
        for i in range(m):
            row = index[start + i]
            for j in range(n0):
                xb[i, j] = X[row, j]
    else:  # rows in order are already one block
        xb = X[start:stop]
    # forward: the layers' outputs one after another in work, after the batch
    offset, p_off = cap * n0, 0
    a_in = xb
    value = 0.0
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        W = _view(params, p_off, n_in, n_out)
        b = params[p_off + n_in * n_out : p_off + n_in * n_out + n_out]
        a = _view(work, offset, m, n_out)
        _product(gemm, wide, a_in, False, W, False, a)
        if layer == n_layers - 1 and loss != SQUARED_ERROR:  # the fused losses' values come from the logits
            _activate(a, b, IDENTITY, one, limit, one)
            if loss == CROSS_ENTROPY:
                value = _cross_entropy(a, labels[start:stop], w, norm)
            else:
                value = _logit_loss(a, Y[start:stop], w, norm)
            _activate(a, b[:0], acts[layer], alphas[layer], limit, one)
        else:
            _activate(a, b, acts[layer], alphas[layer], limit, one)
        a_in = a
        offset += cap * n_out
        p_off += n_in * n_out + n_out
    # the loss step, then backward from the output layer
    widest = 0
    for layer in range(1, n_layers + 1):
        widest = max(widest, sizes[layer])
    d_offsets = (offset, offset + cap * widest)
    k = sizes[n_layers]
    d = _view(work, d_offsets[0], m, k)
    if loss == SQUARED_ERROR:
        value = _squared_error(a_in, Y[start:stop], w, norm)
    _delta(a_in, labels[start:stop], Y[start:stop], loss, d)
    if w.shape[0]:
        scale = _cast(m / norm, d)
        for i in range(m):
            row = w[i] * scale
            for j in range(k):
                d[i, j] = d[i, j] * row
    p_last = p_off - (sizes[n_layers - 1] * k + k)
    out_code = acts[n_layers - 1] if loss == SQUARED_ERROR else IDENTITY  # (fused: d is already dL/dz)
    _slope(d, a_in, out_code, alphas[n_layers - 1], one, grads[p_last + sizes[n_layers - 1] * k : p_off])
    a_offset = offset - cap * k
    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        p_off -= n_in * n_out + n_out
        a_offset -= cap * n_in if layer > 0 else 0
        below = _view(work, a_offset, m, n_in) if layer > 0 else xb
        gW = _view(grads, p_off, n_in, n_out)
        _product(gemm, wide, below, True, d, False, gW)  # dW = X.T dZ (db was summed with dZ's slope)
        if layer == 0:
            break
        W = _view(params, p_off, n_in, n_out)
        d_next = _view(work, d_offsets[(n_layers - layer) % 2], m, n_in)
        _product(gemm, wide, d, False, W, True, d_next)
        gb_below = p_off - n_in  # the biases of the layer below end where this layer's weights start
        _slope(d_next, below, acts[layer - 1], alphas[layer - 1], one, grads[gb_below:p_off])
        d = d_next
    return value


@njit(cache=True, nogil=True, error_model="numpy")
def _add_l2(params, grads, sizes, l2):
    """``dW += l2 * W`` for every weight matrix (not the biases)."""
    p_off = 0
    for layer in range(sizes.shape[0] - 1):
        n_w = sizes[layer] * sizes[layer + 1]
        for i in range(p_off, p_off + n_w):
            grads[i] += l2 * params[i]
        p_off += n_w + sizes[layer + 1]


@njit(cache=True, nogil=True, error_model="numpy")
def _sgd(p, g, buf, c):
    """SGD; ``c``: lr, weight_decay, momentum, 1 - dampening, nesterov, first step, dampening."""
    lr, wd, mu, undamp, nesterov, first, damp = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    zero = lr - lr
    n = p.shape[0]
    if mu == zero and wd == zero:  # the plain rule, as one loop the compiler vectorizes
        for i in range(n):
            p[i] -= g[i] * lr
        return
    if mu != zero and wd == zero and nesterov == zero and damp == zero and first == zero:
        for i in range(n):
            b = buf[i] * mu + g[i]
            buf[i] = b
            p[i] -= b * lr
        return
    for i in range(n):
        gi = g[i]
        if wd != zero:
            gi = gi + wd * p[i]
        if mu != zero:
            if first != zero:
                b = gi
            else:
                b = buf[i] * mu
                b = b + (undamp * gi if damp != zero else gi)
            buf[i] = b
            gi = gi + mu * b if nesterov != zero else b
        p[i] -= gi * lr


@njit(cache=True, nogil=True, error_model="numpy")
def _adam(p, g, m, v, c):
    """Adam/AdamW; ``c``: lr / bc1, 1 / sqrt(bc2), b1, 1 - b1, b2, 1 - b2, eps, weight_decay, decoupled, 1 - lr wd."""
    step, inv_bc2, b1, nb1, b2, nb2, eps, wd, decoupled, shrink = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
    zero = eps - eps
    n = p.shape[0]
    if wd != zero and decoupled != zero:
        for i in range(n):
            p[i] = p[i] * shrink
    if wd != zero and decoupled == zero:  # the L2 form: g + wd p, in a copy (the gradients stay as backprop left them)
        for i in range(n):
            gi = g[i] + wd * p[i]
            mi = m[i] * b1 + gi * nb1
            vi = v[i] * b2 + gi * gi * nb2
            m[i] = mi
            v[i] = vi
            p[i] -= mi / (np.sqrt(vi) * inv_bc2 + eps) * step
        return
    for i in range(n):
        gi = g[i]
        mi = m[i] * b1 + gi * nb1
        vi = v[i] * b2 + gi * gi * nb2
        m[i] = mi
        v[i] = vi
        p[i] -= mi / (np.sqrt(vi) * inv_bc2 + eps) * step


@njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop(p, g, sq, buf, ga, c):
    """RMSprop; ``c``: lr, alpha, 1 - alpha, eps, momentum, centered, weight_decay."""
    lr, alpha, nalpha, eps, mu, centered, wd = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    zero = eps - eps
    n = p.shape[0]
    if mu == zero and centered == zero and wd == zero:
        for i in range(n):
            gi = g[i]
            si = sq[i] * alpha + nalpha * gi * gi
            sq[i] = si
            p[i] -= lr * (gi / (np.sqrt(si) + eps))
        return
    for i in range(n):
        gi = g[i]
        if wd != zero:
            gi = gi + wd * p[i]
        si = sq[i] * alpha + nalpha * gi * gi
        sq[i] = si
        if centered != zero:
            gai = ga[i] * alpha + nalpha * gi
            ga[i] = gai
            avg = np.sqrt(si - gai * gai) + eps
        else:
            avg = np.sqrt(si) + eps
        if mu != zero:
            b = buf[i] * mu + gi / avg
            buf[i] = b
            p[i] -= lr * b
        else:
            p[i] -= lr * (gi / avg)


@njit(cache=True, nogil=True, error_model="numpy")
def _update(p, g, s1, s2, s3, kind, c):
    """One optimizer step on the flat dials ``p``; ``c`` holds the step's constants in the dials' dtype."""
    if kind == SGD:
        _sgd(p, g, s1, c)
    elif kind == ADAM:
        _adam(p, g, s1, s2, c)
    else:
        _rmsprop(p, g, s1, s2, s3, c)


@njit(cache=True, nogil=True, error_model="numpy")
def step(gemm, wide, X, index, start, stop, labels, Y, weights, sizes, acts, alphas, loss, params, grads, work, cap,
         hyper, mode, kind, c, s1, s2, s3):
    """One training step (``mode``: see the module's docstring); returns the loss value (NaN for update only)."""
    value = math.nan
    if mode != UPDATE:
        value = _backprop(gemm, wide, X, index, start, stop, labels, Y, weights, sizes, acts, alphas, loss, params, grads, work, cap, hyper)
        if mode == BACKPROP or not math.isfinite(value):
            return value
    if hyper[1] != 0:
        _add_l2(params, grads, sizes, hyper[1])
    _update(params, grads, s1, s2, s3, kind, c)
    return value
