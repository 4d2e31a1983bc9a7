"""Fused CPU kernels compiled on first use: RoI max pooling and deformable sampling.

Two of convolab's kernels have no fast formulation in torch ops: RoI max pooling (a max
over a different small window per bin, and its first argmax) and the bilinear sampling of
deformable convolution (four weighted corner rows per tap, with the sampling point
computed from the offsets). Both are plain loops over channels-last rows, which a
compiler vectorises over the channels. This module holds them as C++ source, builds it
with ``torch.utils.cpp_extension`` the first time a kernel is wanted, and loads it with
``ctypes`` (the functions take raw pointers, so the source needs no torch headers and
builds in a few seconds).

- ``pip install`` stays pure Python: nothing is built at install or import time.
- The library is cached per user, keyed by a hash of the source, the flags, the torch
  version and this CPU's capability (``$CONVOLAB_CACHE``, else ``~/.cache/convolab``), so
  a process after the first only loads it. Builders do not lock: each builds in a private
  folder and renames the result into place.
- Without a compiler (or with ``CONVOLAB_NATIVE=0``, or on a failed build) :func:`library`
  returns None and every caller runs its pure-PyTorch path, which computes the same
  results; the tests run both.
- The kernels run on CPU tensors of float32 or float64; the callers upcast bf16/fp16 and
  keep their torch path for every other device and dtype.

The callers stay torch custom ops (``convolab::roi_pool``, ``convolab::deform_conv``):
this library only changes how their CPU kernels compute.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Optional

import torch
from torch import Tensor

__all__ = ["build_seconds", "disabled", "library", "pointer", "status"]

#: Compiler flags: -O3 vectorises the channel loops; -march=native lets the compiler use
#: this CPU's vector width (the cache key includes torch's view of the CPU capability);
#: no contraction into fused multiply-adds, so that box and sampling arithmetic rounds
#: exactly as torch's elementwise ops do on the pure-PyTorch path.
CFLAGS = ("-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-pthread")

SOURCE = r"""
// convolab's fused CPU kernels (see convolab/functional/_native.py). Raw pointers only.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace {

// Run body(begin, end) over [0, n) in chunks of about `grain`, on the calling thread and
// up to threads - 1 helpers. Chunks are claimed from a shared counter, and the caller only
// waits for chunks a helper has claimed: on a loaded machine a helper that is not
// scheduled in time finds no work left, instead of holding the caller up (a static split
// would wait for it). The state lives on the heap, owned jointly, so a late helper never
// touches the caller's stack; it calls body only after claiming a chunk, which the
// caller waits for.
struct Shared {
  std::atomic<int64_t> next{0}, done{0};
  int64_t n = 0, grain = 1, chunks = 0;
  const std::function<void(int64_t, int64_t)>* body = nullptr;
  std::mutex m;
  std::condition_variable cv;

  bool run_one() {
    const int64_t i = next.fetch_add(1);
    if (i >= chunks) return false;
    (*body)(i * grain, std::min(n, (i + 1) * grain));
    if (done.fetch_add(1) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(m);
      cv.notify_all();
    }
    return true;
  }
};

void parallel_for(int64_t n, int threads, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (threads <= 1 || chunks <= 1) {
    body(0, n);
    return;
  }
  auto shared = std::make_shared<Shared>();
  shared->n = n;
  shared->grain = grain;
  shared->chunks = chunks;
  shared->body = &body;
  const int helpers = int(std::min<int64_t>(threads - 1, chunks - 1));
  for (int h = 0; h < helpers; ++h) {
    std::thread([shared] {
      while (shared->run_one()) {
      }
    }).detach();
  }
  while (shared->run_one()) {
  }
  std::unique_lock<std::mutex> lock(shared->m);
  shared->cv.wait(lock, [&] { return shared->done.load() == shared->chunks; });
}

// chunks of work: about 16 per thread (a helper preempted mid-chunk holds the caller up
// for one small chunk at most), at least `least` items each
inline int64_t grain_for(int64_t n, int threads, int64_t least) {
  return std::max<int64_t>(least, (n + 16 * threads - 1) / std::max(1, 16 * threads));
}

// ---------------------------------------------------------------------------------------
// RoI max pooling. x: channels-last rows [N, H, W, C]; rois [K, 5] (batch, x1, y1, x2, y2);
// out [K, C, oh, ow] contiguous; arg the same, int32: the flat h*W + w of the first maximum
// in row-major order (a NaN beats any number and the first NaN wins), -1 with value 0 for
// an empty bin.

// The bins of one box along one dim, exactly as convolab.functional.roi._pool_bins computes
// them in T arithmetic (corners rounded half away from zero, bins floor/ceil, clipped).
template <typename T>
void pool_bins(T lo, T hi, T scale, int64_t bins, int64_t limit, int64_t* start, int64_t* end) {
  auto round_half_away = [](T v) { return int64_t(std::copysign(std::floor(std::fabs(v) + T(0.5)), v)); };
  const int64_t a = round_half_away(lo * scale), b = round_half_away(hi * scale);
  const T size = T(std::max<int64_t>(b - a + 1, 1)) / T(bins);
  for (int64_t p = 0; p < bins; ++p) {
    start[p] = std::min(std::max(int64_t(std::floor(T(p) * size)) + a, int64_t(0)), limit);
    end[p] = std::min(std::max(int64_t(std::ceil(T(p + 1) * size)) + a, int64_t(0)), limit);
  }
}

// One bin: the max of the window's rows (channels vectorised) into best/where.
template <typename T>
void window_max(const T* img, int64_t W, int64_t C, int64_t h0, int64_t h1, int64_t w0, int64_t w1, T* best,
                int32_t* where) {
  const T* first = img + (h0 * W + w0) * C;
  const int32_t p0 = int32_t(h0 * W + w0);
  for (int64_t c = 0; c < C; ++c) {
    best[c] = first[c];
    where[c] = p0;
  }
  for (int64_t h = h0; h < h1; ++h) {
    for (int64_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
      const T* r = img + (h * W + w) * C;
      const int32_t p = int32_t(h * W + w);
      for (int64_t c = 0; c < C; ++c) {
        const T v = r[c], b = best[c];
        const bool take = (v > b) | ((v != v) & (b == b));
        best[c] = take ? v : b;
        where[c] = take ? p : where[c];
      }
    }
  }
}

template <typename T>
void roi_pool_forward(const T* x, int64_t H, int64_t W, int64_t C, const T* rois, double spatial_scale, int64_t K,
                      int64_t oh, int64_t ow, T* out, int32_t* arg, int threads) {
  const T scale = T(spatial_scale);
  const int64_t plane = oh * ow;
  parallel_for(K, threads, grain_for(K, threads, 1), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> hs(oh), he(oh), ws(ow), we(ow);
    // one box's bins as channels-last rows [oh*ow, C], then stored transposed: scanning
    // writes whole output rows, where storing each bin's C values would touch C lines
    std::vector<T> best(plane * C);
    std::vector<int32_t> where(plane * C);
    for (int64_t k = begin; k < end; ++k) {
      const T* roi = rois + k * 5;
      pool_bins(roi[2], roi[4], scale, oh, H, hs.data(), he.data());
      pool_bins(roi[1], roi[3], scale, ow, W, ws.data(), we.data());
      const T* img = x + int64_t(roi[0]) * H * W * C;
      for (int64_t ph = 0; ph < oh; ++ph) {
        for (int64_t pw = 0; pw < ow; ++pw) {
          T* b = best.data() + (ph * ow + pw) * C;
          int32_t* w = where.data() + (ph * ow + pw) * C;
          if (he[ph] <= hs[ph] || we[pw] <= ws[pw]) {
            std::fill(b, b + C, T(0));
            std::fill(w, w + C, int32_t(-1));
          } else {
            window_max(img, W, C, hs[ph], he[ph], ws[pw], we[pw], b, w);
          }
        }
      }
      // transposed in blocks of 16 channels: each step reads one line of a row and
      // extends 16 output rows, which stay in cache until they are whole
      T* o = out + k * C * plane;
      int32_t* a = arg + k * C * plane;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t c1 = std::min(C, c0 + 16);
        for (int64_t j = 0; j < plane; ++j) {
          const T* bj = best.data() + j * C;
          const int32_t* wj = where.data() + j * C;
          for (int64_t c = c0; c < c1; ++c) {
            o[c * plane + j] = bj[c];
            a[c * plane + j] = wj[c];
          }
        }
      }
    }
  });
}

// grad [K, C, oh, ow] and arg [K, C, oh, ow] with any strides (in elements, gs and as);
// grad_in [N, C, H, W] zeroed, contiguous (channel stride H*W) or channels-last (channel
// stride 1). Threads split the channels, one range each, so no two threads ever add to
// the same element; each scans every box in its range's order of memory.
template <typename T>
void roi_pool_backward(const T* grad, const int64_t* gs, const int32_t* arg, const int64_t* as, const T* rois,
                       int64_t K, int64_t C, int64_t oh, int64_t ow, int64_t H, int64_t W, T* grad_in,
                       int64_t channel_stride, int threads) {
  const int64_t pixel_stride = channel_stride == 1 ? C : 1;
  // each (box, channel) block of grad and arg is one run of oh*ow values (the usual case)
  const bool dense = gs[3] == 1 && gs[2] == ow && as[3] == 1 && as[2] == ow;
  // one channel range per thread, in whole cache lines: a range scans every box, so more
  // ranges than threads would read the argmax and grad rows again per range
  const int64_t per_thread = ((C + threads - 1) / std::max(threads, 1) + 15) / 16 * 16;
  parallel_for(C, threads, per_thread, [&](int64_t c0, int64_t c1) {
    for (int64_t k = 0; k < K; ++k) {
      T* img = grad_in + int64_t(rois[k * 5]) * H * W * C;
      for (int64_t c = c0; c < c1; ++c) {
        const T* g = grad + k * gs[0] + c * gs[1];
        const int32_t* a = arg + k * as[0] + c * as[1];
        T* target = img + c * channel_stride;
        if (dense) {
          for (int64_t j = 0; j < oh * ow; ++j) {
            const int32_t p = a[j];
            if (p >= 0) target[int64_t(p) * pixel_stride] += g[j];
          }
          continue;
        }
        for (int64_t ph = 0; ph < oh; ++ph) {
          for (int64_t pw = 0; pw < ow; ++pw) {
            const int32_t p = a[ph * as[2] + pw * as[3]];
            if (p >= 0) target[int64_t(p) * pixel_stride] += g[ph * gs[2] + pw * gs[3]];
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Deformable convolution, 2-D. The input is a table of channel rows, zero-padded by one
// pixel before and two after each spatial dim: [N, H+3, W+3, G, Cg] (G offset groups of
// Cg channels). A sampling point clamped to [-1, size] has its four corners inside the
// table, and every corner outside the input reads a zero row. A NaN point reads the zero
// rows with NaN weights (its output turns NaN, as a dense op's would).

struct Geometry2d {
  int64_t H, W, G, Cg, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw;
};

template <typename T>
struct Corners {
  int64_t row;      // table row of the top-left corner
  T fy, fx;         // fractions inside the cell
  bool live_y, live_x;  // the point was not clamped (the offset gradient flows)
};

template <typename T>
inline Corners<T> corners(const Geometry2d& g, int64_t n, int64_t grp, T y, T x) {
  Corners<T> c;
  const T yc = std::min(std::max(y, T(-1)), T(g.H)), xc = std::min(std::max(x, T(-1)), T(g.W));
  c.live_y = yc == y;
  c.live_x = xc == x;
  const T ly = std::floor(yc), lx = std::floor(xc);
  c.fy = yc - ly;
  c.fx = xc - lx;
  const int64_t iy = (yc == yc) ? int64_t(ly) : -1, ix = (xc == xc) ? int64_t(lx) : -1;
  c.row = ((n * (g.H + 3) + iy + 1) * (g.W + 3) + ix + 1) * g.G + grp;
  return c;
}

// The columns of output rows [r0, r1) (row = n*Ho*Wo + position): cols[r - r0] holds
// [taps, G, Cg] sampled values times the mask, ready for one GEMM with the weight.
template <typename T>
void deform_columns(const Geometry2d& g, const T* table, const T* offset, const T* mask, int64_t r0, int64_t r1,
                    T* cols, int threads) {
  const int64_t L = g.Ho * g.Wo, taps = g.kh * g.kw, Cg = g.Cg, G = g.G;
  const int64_t dx_row = G, dy_row = (g.W + 3) * G;
  parallel_for(r1 - r0, threads, grain_for(r1 - r0, threads, 32), [&](int64_t b0, int64_t b1) {
    for (int64_t r = r0 + b0; r < r0 + b1; ++r) {
      const int64_t n = r / L, l = r % L, oy = l / g.Wo, ox = l % g.Wo;
      T* row = cols + (r - r0) * taps * G * Cg;
      for (int64_t grp = 0; grp < G; ++grp) {
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t ky = t / g.kw, kx = t % g.kw;
          const T* off = offset + ((n * G + grp) * taps + t) * 2 * L + l;
          const T y = T(oy * g.sh - g.ph + ky * g.dh) + off[0];
          const T x = T(ox * g.sw - g.pw + kx * g.dw) + off[L];
          const Corners<T> c = corners(g, n, grp, y, x);
          const T m = mask ? mask[((n * G + grp) * taps + t) * L + l] : T(1);
          const T w00 = (1 - c.fy) * (1 - c.fx) * m, w01 = (1 - c.fy) * c.fx * m;
          const T w10 = c.fy * (1 - c.fx) * m, w11 = c.fy * c.fx * m;
          const T* t00 = table + c.row * Cg;
          const T* t01 = t00 + dx_row * Cg;
          const T* t10 = t00 + dy_row * Cg;
          const T* t11 = t10 + dx_row * Cg;
          T* dst = row + (t * G + grp) * Cg;
          for (int64_t ch = 0; ch < Cg; ++ch)
            dst[ch] = w00 * t00[ch] + w01 * t01[ch] + w10 * t10[ch] + w11 * t11[ch];
        }
      }
    }
  });
}

// The backward of deform_columns for output rows [r0, r1), given gcols (the gradient of
// those columns, same layout): adds the input gradient into grad_table (same layout as
// the table), and writes the offset and mask gradients of the chunk's rows (grad_mask
// may be null). Two passes: the dot products per corner (read-only, split by rows),
// then the scatter into grad_table (split by channels, so no two threads add to the
// same element).
template <typename T>
void deform_columns_backward(const Geometry2d& g, const T* table, const T* offset, const T* mask, int64_t r0,
                             int64_t r1, const T* gcols, T* grad_table, T* grad_offset, T* grad_mask,
                             int64_t* rows_buf, T* weights_buf, int threads) {
  const int64_t L = g.Ho * g.Wo, taps = g.kh * g.kw, Cg = g.Cg, G = g.G;
  const int64_t dx_row = G, dy_row = (g.W + 3) * G;
  const int64_t bags = (r1 - r0) * G * taps;
  parallel_for(r1 - r0, threads, grain_for(r1 - r0, threads, 32), [&](int64_t b0, int64_t b1) {
    for (int64_t r = r0 + b0; r < r0 + b1; ++r) {
      const int64_t n = r / L, l = r % L, oy = l / g.Wo, ox = l % g.Wo;
      const T* grow = gcols + (r - r0) * taps * G * Cg;
      for (int64_t grp = 0; grp < G; ++grp) {
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t ky = t / g.kw, kx = t % g.kw;
          const int64_t oi = ((n * G + grp) * taps + t) * 2 * L + l;
          const int64_t mi = ((n * G + grp) * taps + t) * L + l;
          const T y = T(oy * g.sh - g.ph + ky * g.dh) + offset[oi];
          const T x = T(ox * g.sw - g.pw + kx * g.dw) + offset[oi + L];
          const Corners<T> c = corners(g, n, grp, y, x);
          const T m = mask ? mask[mi] : T(1);
          const T* t00 = table + c.row * Cg;
          const T* t01 = t00 + dx_row * Cg;
          const T* t10 = t00 + dy_row * Cg;
          const T* t11 = t10 + dx_row * Cg;
          const T* gc = grow + (t * G + grp) * Cg;
          T d00 = 0, d01 = 0, d10 = 0, d11 = 0;
          for (int64_t ch = 0; ch < Cg; ++ch) {
            const T v = gc[ch];
            d00 += v * t00[ch];
            d01 += v * t01[ch];
            d10 += v * t10[ch];
            d11 += v * t11[ch];
          }
          const T fy = c.fy, fx = c.fx;
          if (grad_mask) grad_mask[mi] = d00 * (1 - fy) * (1 - fx) + d01 * (1 - fy) * fx + d10 * fy * (1 - fx) + d11 * fy * fx;
          const T gy = ((d10 - d00) * (1 - fx) + (d11 - d01) * fx) * m;
          const T gx = ((d01 - d00) * (1 - fy) + (d11 - d10) * fy) * m;
          if (grad_offset) {
            grad_offset[oi] = c.live_y ? gy : T(0);
            grad_offset[oi + L] = c.live_x ? gx : T(0);
          }
          const int64_t bag = ((r - r0) * G + grp) * taps + t;
          rows_buf[bag] = c.row;
          T* wb = weights_buf + bag * 4;
          wb[0] = (1 - fy) * (1 - fx) * m;
          wb[1] = (1 - fy) * fx * m;
          wb[2] = fy * (1 - fx) * m;
          wb[3] = fy * fx * m;
        }
      }
    }
  });
  if (!grad_table) return;
  parallel_for(Cg, threads, 8, [&](int64_t c0, int64_t c1) {
    for (int64_t bag = 0; bag < bags; ++bag) {
      const int64_t rr = bag / (G * taps), rest = bag % (G * taps), grp = rest / taps, t = rest % taps;
      const T* gc = gcols + rr * taps * G * Cg + (t * G + grp) * Cg;
      const T* wb = weights_buf + bag * 4;
      T* t00 = grad_table + rows_buf[bag] * Cg;
      T* t01 = t00 + dx_row * Cg;
      T* t10 = t00 + dy_row * Cg;
      T* t11 = t10 + dx_row * Cg;
      for (int64_t ch = c0; ch < c1; ++ch) {
        const T v = gc[ch];
        t00[ch] += wb[0] * v;
        t01[ch] += wb[1] * v;
        t10[ch] += wb[2] * v;
        t11[ch] += wb[3] * v;
      }
    }
  });
}

}  // namespace

extern "C" {

int convolab_native_abi() { return 1; }

#define CONVOLAB_ROI_POOL(T, S)                                                                                 \
  void roi_pool_forward_##S(const T* x, int64_t H, int64_t W, int64_t C, const T* rois, double scale, int64_t K,    \
                            int64_t oh, int64_t ow, T* out, int32_t* arg, int threads) {                           \
    roi_pool_forward<T>(x, H, W, C, rois, scale, K, oh, ow, out, arg, threads);                                  \
  }                                                                                                              \
  void roi_pool_backward_##S(const T* grad, const int64_t* gs, const int32_t* arg, const int64_t* as,            \
                             const T* rois, int64_t K, int64_t C, int64_t oh, int64_t ow, int64_t H, int64_t W,  \
                             T* grad_in, int64_t channel_stride, int threads) {                                 \
    roi_pool_backward<T>(grad, gs, arg, as, rois, K, C, oh, ow, H, W, grad_in, channel_stride, threads);         \
  }

CONVOLAB_ROI_POOL(float, f32)
CONVOLAB_ROI_POOL(double, f64)

#define CONVOLAB_DEFORM(T, S)                                                                                    \
  void deform_columns_##S(const int64_t* geo, const T* table, const T* offset, const T* mask, int64_t r0,         \
                          int64_t r1, T* cols, int threads) {                                                   \
    const Geometry2d g{geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6],                                   \
                       geo[7], geo[8], geo[9], geo[10], geo[11], geo[12], geo[13]};                              \
    deform_columns<T>(g, table, offset, mask, r0, r1, cols, threads);                                            \
  }                                                                                                              \
  void deform_columns_backward_##S(const int64_t* geo, const T* table, const T* offset, const T* mask,           \
                                   int64_t r0, int64_t r1, const T* gcols, T* grad_table, T* grad_offset,        \
                                   T* grad_mask, int64_t* rows_buf, T* weights_buf, int threads) {              \
    const Geometry2d g{geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6],                                   \
                       geo[7], geo[8], geo[9], geo[10], geo[11], geo[12], geo[13]};                              \
    deform_columns_backward<T>(g, table, offset, mask, r0, r1, gcols, grad_table, grad_offset, grad_mask,        \
                               rows_buf, weights_buf, threads);                                                  \
  }

CONVOLAB_DEFORM(float, f32)
CONVOLAB_DEFORM(double, f64)

}  // extern "C"
"""

# ctypes signatures: p = pointer, i = int64, d = double, t = int (thread count)
_SIGNATURES = {
    "roi_pool_forward": "piiipdiiippt",
    "roi_pool_backward": "ppppp" "iiiiii" "pit",
    "deform_columns": "ppppiipt",
    "deform_columns_backward": "ppppii" "pppppp" "t",
}
_CTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "d": ctypes.c_double, "t": ctypes.c_int}

_lock = threading.Lock()
_state: dict = {"lib": None, "tried": False, "reason": "not built yet", "seconds": 0.0, "disabled": 0}


def _cache_dir() -> str:
    root = os.environ.get("CONVOLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "convolab")
    return os.path.join(root, "kernels")


def _key() -> str:
    """The cache key: what the built library depends on."""
    parts = (SOURCE, " ".join(CFLAGS), torch.__version__, torch.backends.cpu.get_cpu_capability(), platform.machine())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _build(path: str) -> None:
    """Compile SOURCE into ``path`` with torch's extension builder, in a private folder, then rename."""
    from torch.utils.cpp_extension import load

    os.makedirs(os.path.dirname(path), exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(path))
    try:
        src = os.path.join(work, "convolab_kernels.cpp")
        with open(src, "w", encoding="utf-8") as f:
            f.write(SOURCE)
        built = load(
            "convolab_kernels",
            [src],
            extra_cflags=list(CFLAGS),
            build_directory=work,
            is_python_module=False,
            verbose=False,
        )
        os.replace(built, path)  # atomic: a concurrent builder's identical file may be replaced
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, sig in _SIGNATURES.items():
        for suffix in ("f32", "f64"):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [_CTYPES[s] for s in sig]
            fn.restype = None
    return lib


def library() -> Optional[ctypes.CDLL]:
    """The compiled kernels, building them on first use; None when unavailable (see :func:`status`)."""
    if _state["disabled"]:
        return None
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if _state["tried"]:
            return _state["lib"]
        if os.environ.get("CONVOLAB_NATIVE", "1") == "0":
            _state["reason"] = "disabled by CONVOLAB_NATIVE=0"
        else:
            path = os.path.join(_cache_dir(), _key(), "convolab_kernels.so")
            try:
                if not os.path.exists(path):
                    start = time.perf_counter()
                    _build(path)
                    _state["seconds"] = time.perf_counter() - start
                lib = _bind(ctypes.CDLL(path))
                if lib.convolab_native_abi() != 1:
                    raise RuntimeError("unexpected ABI version")
                _state["lib"], _state["reason"] = lib, f"loaded {path}"
            except Exception as exc:  # no compiler, no ninja, a failed build: the torch path runs
                _state["reason"] = f"unavailable ({type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''})"
        _state["tried"] = True
        return _state["lib"]


def status() -> str:
    """Why :func:`library` returns what it does: the loaded path, or the reason it is unavailable."""
    return _state["reason"] if _state["tried"] and not _state["disabled"] else (
        "disabled (convolab.functional._native.disabled())" if _state["disabled"] else "not built yet")


def build_seconds() -> float:
    """Seconds this process spent building the library (0 when it came from the cache)."""
    return _state["seconds"]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the pure-PyTorch paths inside the block (the tests compare both; benchmarks time both)."""
    _state["disabled"] += 1
    try:
        yield
    finally:
        _state["disabled"] -= 1


def pointer(t: Optional[Tensor]) -> Optional[int]:
    """The data pointer of a CPU tensor for ctypes (None for None)."""
    return None if t is None else t.data_ptr()


def threads() -> int:
    """How many threads a kernel may use: torch's intra-op setting."""
    return torch.get_num_threads()


def usable(*tensors: Optional[Tensor]) -> Optional[ctypes.CDLL]:
    """The library if every given tensor is a CPU float32/float64 tensor of one dtype, else None."""
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        return None
    if any(t is not None and t.device.type != "cpu" for t in tensors):
        return None
    return library()
