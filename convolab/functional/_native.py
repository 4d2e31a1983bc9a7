"""Fused CPU kernels compiled on first use: RoI pooling and align, and deformable sampling.

Three of convolab's kernels have no fast formulation in torch ops: RoI max pooling (a max
over a different small window per bin, and its first argmax), RoI align's forward (each
bin's bilinear samples, computed in place) and the bilinear sampling of deformable
convolution (four weighted corner rows per tap, with the sampling point computed from the
offsets). RoI align's backward stays in torch ops: measured, its radix-sorted index_add is
faster than a kernel here. The kernels are plain loops over channels-last rows, which a
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

The callers stay torch custom ops (``convolab::roi_pool``, ``convolab::roi_align``,
``convolab::deform_conv``):
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

__all__ = ["blas", "build_seconds", "disabled", "library", "pointer", "status", "threads", "usable"]

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

// A team of the calling thread and up to threads - 1 helpers works through `chunks`
// chunks, claimed one at a time from a shared counter. A worker is called with its first
// chunk and the team, claims the rest itself (team.claim() until -1, team.complete()
// after each chunk) and may then finish (add what it accumulated to shared results).
// The caller waits only for chunks a helper has claimed and for those helpers to finish:
// on a loaded machine a helper that is not scheduled in time finds no work left and
// never calls the worker, instead of holding the caller up, as a static split would.
// The team lives on the heap, owned jointly, so a late helper never touches the caller's
// stack: it only calls the worker after claiming a chunk, which the caller waits for.
struct Team {
  std::atomic<int64_t> next{0}, done{0}, started{0}, finished{0};
  int64_t chunks = 0;
  const std::function<void(int64_t, Team&)>* worker = nullptr;
  std::mutex m;
  std::condition_variable cv;

  int64_t claim() {
    const int64_t i = next.fetch_add(1);
    return i < chunks ? i : -1;
  }
  void complete() {
    if (done.fetch_add(1) + 1 == chunks) wake();
  }
  void wake() {
    std::lock_guard<std::mutex> lock(m);
    cv.notify_all();
  }
};

void run_team(int64_t chunks, int threads, const std::function<void(int64_t, Team&)>& worker) {
  if (chunks <= 0) return;
  auto team = std::make_shared<Team>();
  team->chunks = chunks;
  team->worker = &worker;
  const int helpers = int(std::min<int64_t>(std::max(threads, 1) - 1, chunks - 1));
  for (int h = 0; h < helpers; ++h) {
    std::thread([team] {
      const int64_t first = team->claim();
      if (first < 0) return;
      team->started.fetch_add(1);
      (*team->worker)(first, *team);
      team->finished.fetch_add(1);
      team->wake();
    }).detach();
  }
  const int64_t first = team->claim();
  if (first >= 0) worker(first, *team);
  std::unique_lock<std::mutex> lock(team->m);
  team->cv.wait(lock, [&] { return team->done.load() == chunks && team->started.load() == team->finished.load(); });
}

// body(begin, end) over [0, n) in chunks of `grain`, by a team of `threads`.
void parallel_for(int64_t n, int threads, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (threads <= 1 || chunks <= 1) {
    body(0, n);
    return;
  }
  run_team(chunks, threads, [&](int64_t first, Team& team) {
    for (int64_t i = first; i >= 0; i = team.claim()) {
      body(i * grain, std::min(n, (i + 1) * grain));
      team.complete();
    }
  });
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
// grad_in [N, C, H, W] (zeroed here), contiguous (channel stride H*W) or channels-last (channel
// stride 1). Threads split the channels, one range each, so no two threads ever add to
// the same element; each scans every box in its range's order of memory.
template <typename T>
void roi_pool_backward(const T* grad, const int64_t* gs, const int32_t* arg, const int64_t* as, const T* rois,
                       int64_t K, int64_t C, int64_t oh, int64_t ow, int64_t N, int64_t H, int64_t W, T* grad_in,
                       int64_t channel_stride, int threads) {
  const int64_t pixel_stride = channel_stride == 1 ? C : 1;
  parallel_for(N * H, threads, grain_for(N * H, threads, 4), [&](int64_t b, int64_t e) {
    std::fill(grad_in + b * W * C, grad_in + e * W * C, T(0));
  });
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
// RoI align. x: channels-last rows [N, H, W, C]; rois [K, 5]; out: rows [K, oh, ow, C].
// The sampling grid, corners and weights follow convolab.functional.roi._align_chunks in T
// arithmetic; each bin is the weighted sum of its samples' corner rows (channels vectorised).

template <typename T>
struct AlignBox {
  int64_t batch, gh, gw;
  T start_y, start_x, bin_h, bin_w;
};

template <typename T>
AlignBox<T> align_box(const T* roi, T scale, int64_t oh, int64_t ow, int64_t sampling_ratio, bool aligned) {
  AlignBox<T> b;
  const T shift = aligned ? T(0.5) : T(0);
  b.batch = int64_t(roi[0]);
  b.start_x = roi[1] * scale - shift;
  b.start_y = roi[2] * scale - shift;
  T ext_x = roi[3] * scale - shift - b.start_x, ext_y = roi[4] * scale - shift - b.start_y;
  if (!aligned) {
    ext_x = std::max(ext_x, T(1));
    ext_y = std::max(ext_y, T(1));
  }
  b.bin_w = ext_x / T(ow);
  b.bin_h = ext_y / T(oh);
  b.gh = sampling_ratio > 0 ? sampling_ratio : int64_t(std::ceil(b.bin_h));
  b.gw = sampling_ratio > 0 ? sampling_ratio : int64_t(std::ceil(b.bin_w));
  return b;
}

// One axis of one sample: the two corner pixels and their weights (convolab's _axis).
template <typename T>
inline void align_axis(T coord, int64_t size, int64_t* idx, T* wt) {
  const bool inside = coord >= T(-1) && coord <= T(size);
  coord = std::max(coord, T(0));
  int64_t low = int64_t(std::floor(coord));
  const bool at_end = low >= size - 1;
  if (at_end) low = size - 1;
  const T frac = at_end ? T(0) : coord - T(low);
  idx[0] = low;
  idx[1] = at_end ? low : low + 1;
  wt[0] = inside ? T(1) - frac : T(0);
  wt[1] = inside ? frac : T(0);
}

// Calls f(row, weight) for the 4 * gh * gw corner reads of bin (ph, pw) of a box.
template <typename T, typename F>
inline void align_bin(const AlignBox<T>& b, int64_t ph, int64_t pw, int64_t H, int64_t W, const F& f) {
  const T count = T(b.gh * b.gw);
  for (int64_t iy = 0; iy < b.gh; ++iy) {
    const T y = (b.start_y + T(ph) * b.bin_h) + (T(T(iy) + T(0.5)) * b.bin_h) / T(b.gh);
    int64_t ys[2];
    T wy[2];
    align_axis(y, H, ys, wy);
    wy[0] = wy[0] / count;
    wy[1] = wy[1] / count;
    for (int64_t ix = 0; ix < b.gw; ++ix) {
      const T xx = (b.start_x + T(pw) * b.bin_w) + (T(T(ix) + T(0.5)) * b.bin_w) / T(b.gw);
      int64_t xs[2];
      T wx[2];
      align_axis(xx, W, xs, wx);
      for (int cy = 0; cy < 2; ++cy)
        for (int cx = 0; cx < 2; ++cx) f((b.batch * H + ys[cy]) * W + xs[cx], wy[cy] * wx[cx]);
    }
  }
}

template <typename T>
void roi_align_forward(const T* x, int64_t H, int64_t W, int64_t C, const T* rois, double spatial_scale, int64_t K,
                       int64_t oh, int64_t ow, int64_t sampling_ratio, int aligned, T* out, int threads) {
  const T scale = T(spatial_scale);
  parallel_for(K, threads, grain_for(K, threads, 1), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const AlignBox<T> b = align_box(rois + k * 5, scale, oh, ow, sampling_ratio, aligned != 0);
      for (int64_t ph = 0; ph < oh; ++ph) {
        for (int64_t pw = 0; pw < ow; ++pw) {
          T* o = out + ((k * oh + ph) * ow + pw) * C;
          std::fill(o, o + C, T(0));
          if (b.gh * b.gw == 0) continue;
          align_bin(b, ph, pw, H, W, [&](int64_t row, T w) {
            const T* r = x + row * C;
            for (int64_t c = 0; c < C; ++c) o[c] += w * r[c];
          });
        }
      }
    }
  });
}

// x [N, C, H, W] with strides xs -> channels-last rows [N, H, W, C].
template <typename T>
void to_rows(const T* x, const int64_t* xs, int64_t N, int64_t C, int64_t H, int64_t W, T* rows, int threads) {
  parallel_for(N * H, threads, grain_for(N * H, threads, 4), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / H, y = i % H;
      const T* src = x + n * xs[0] + y * xs[2];
      T* dst = rows + i * W * C;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t c1 = std::min(C, c0 + 16);
        for (int64_t xx = 0; xx < W; ++xx)
          for (int64_t c = c0; c < c1; ++c) dst[xx * C + c] = src[c * xs[1] + xx * xs[3]];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Deformable convolution, 2-D: bilinear sampling and the GEMMs fused per block of output
// positions, in one parallel region. The GEMMs are BLAS calls (torch's own sgemm_/dgemm_,
// whose addresses Python hands over), sequential inside each worker.
//
// The input is a table of channel rows, zero-padded by one pixel before and two after
// each spatial dim: [N, H+3, W+3, C] (rows of Cg = C/G channels per offset group). A
// sampling point clamped to [-1, size] has its four corners inside the table, and every
// corner outside the input reads a zero row. A NaN point reads the zero rows with NaN
// weights (its output turns NaN, as a dense op's would). A block's columns are
// [rows, groups, taps, C/groups]: each convolution group's columns are one contiguous
// run of a row, so every group is one GEMM with its weight [Cout/groups, taps*C/groups].

typedef void (*sgemm_fn)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
typedef void (*dgemm_fn)(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                         const int*, const double*, const int*, const double*, double*, const int*);
typedef int (*threads_local_fn)(int);

struct Blas {
  sgemm_fn s = nullptr;
  dgemm_fn d = nullptr;
  threads_local_fn local = nullptr;
} blas;

// column-major C (m x n) = alpha * op(A) op(B) + beta * C, as Fortran BLAS
inline void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float beta, float* c, int64_t ldc) {
  const int M = int(m), N = int(n), K = int(k), LA = int(lda), LB = int(ldb), LC = int(ldc);
  const float one = 1;
  blas.s(&ta, &tb, &M, &N, &K, &one, a, &LA, b, &LB, &beta, c, &LC);
}
inline void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                 int64_t ldb, double beta, double* c, int64_t ldc) {
  const int M = int(m), N = int(n), K = int(k), LA = int(lda), LB = int(ldb), LC = int(ldc);
  const double one = 1;
  blas.d(&ta, &tb, &M, &N, &K, &one, a, &LA, b, &LB, &beta, c, &LC);
}

// One sequential BLAS per worker while it lives (BLAS would start threads of its own).
struct SequentialBlas {
  int previous;
  SequentialBlas() : previous(blas.local(1)) {}
  ~SequentialBlas() { blas.local(previous); }
};

struct Deform {
  // sizes: batch, input channels, input H/W, offset groups, output H/W, kernel, stride,
  // padding before, dilation, output channels, convolution groups, rows per block
  int64_t N, C, H, W, G, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, Cout, groups, block;
  int64_t L() const { return Ho * Wo; }
  int64_t taps() const { return kh * kw; }
  int64_t Cg() const { return C / G; }          // channels per offset group
  int64_t Ci() const { return C / groups; }     // input channels per convolution group
  int64_t Og() const { return Cout / groups; }  // output channels per convolution group
  int64_t Kg() const { return taps() * Ci(); }  // columns per convolution group
  int64_t Kc() const { return taps() * C; }     // columns per row
  int64_t blocks_per_sample() const { return (L() + block - 1) / block; }
};

template <typename T>
struct Corners {
  int64_t row;          // table row of the top-left corner
  T fy, fx;             // fractions inside the cell
  bool live_y, live_x;  // the point was not clamped (the offset gradient flows)
};

template <typename T>
inline Corners<T> corners(const Deform& d, int64_t n, int64_t grp, T y, T x) {
  Corners<T> c;
  const T yc = std::min(std::max(y, T(-1)), T(d.H)), xc = std::min(std::max(x, T(-1)), T(d.W));
  c.live_y = yc == y;
  c.live_x = xc == x;
  const T ly = std::floor(yc), lx = std::floor(xc);
  c.fy = yc - ly;
  c.fx = xc - lx;
  const int64_t iy = (yc == yc) ? int64_t(ly) : -1, ix = (xc == xc) ? int64_t(lx) : -1;
  c.row = ((n * (d.H + 3) + iy + 1) * (d.W + 3) + ix + 1) * d.G + grp;
  return c;
}

// Calls f(channel offset in the offset group's Cg, column offset in a row, run length) for
// the runs of an offset group's channels that share a convolution group (their columns
// are contiguous).
template <typename F>
inline void channel_runs(const Deform& d, int64_t grp, int64_t tap, const F& f) {
  const int64_t Cg = d.Cg(), Ci = d.Ci();
  for (int64_t ch = 0; ch < Cg;) {
    const int64_t c = grp * Cg + ch, gc = c / Ci, ci = c % Ci, run = std::min(Cg - ch, Ci - ci);
    f(ch, gc * d.Kg() + tap * Ci + ci, run);
    ch += run;
  }
}

// The sampling point of (sample n, position l, offset group grp, tap t).
template <typename T>
inline Corners<T> point(const Deform& d, const T* offset, int64_t n, int64_t l, int64_t grp, int64_t t) {
  const int64_t L = d.L(), oy = l / d.Wo, ox = l % d.Wo, ky = t / d.kw, kx = t % d.kw;
  const T* off = offset + ((n * d.G + grp) * d.taps() + t) * 2 * L + l;
  const T y = T(oy * d.sh - d.ph + ky * d.dh) + off[0];
  const T x = T(ox * d.sw - d.pw + kx * d.dw) + off[L];
  return corners(d, n, grp, y, x);
}

// The columns of positions [l0, l1) of sample n: cols [(l1 - l0), Kc].
template <typename T>
void sample_block(const Deform& d, const T* table, const T* offset, const T* mask, int64_t n, int64_t l0, int64_t l1,
                  T* cols) {
  const int64_t L = d.L(), taps = d.taps(), Kc = d.Kc(), Cg = d.Cg();
  const int64_t dx = d.G * Cg, dy = (d.W + 3) * d.G * Cg;
  for (int64_t l = l0; l < l1; ++l) {
    T* row = cols + (l - l0) * Kc;
    for (int64_t grp = 0; grp < d.G; ++grp) {
      for (int64_t t = 0; t < taps; ++t) {
        const Corners<T> c = point(d, offset, n, l, grp, t);
        const T m = mask ? mask[((n * d.G + grp) * taps + t) * L + l] : T(1);
        const T w00 = (1 - c.fy) * (1 - c.fx) * m, w01 = (1 - c.fy) * c.fx * m;
        const T w10 = c.fy * (1 - c.fx) * m, w11 = c.fy * c.fx * m;
        const T* t00 = table + c.row * Cg;
        const T *t01 = t00 + dx, *t10 = t00 + dy, *t11 = t00 + dy + dx;
        channel_runs(d, grp, t, [&](int64_t ch, int64_t col, int64_t run) {
          T* dst = row + col;
          for (int64_t j = 0; j < run; ++j)
            dst[j] = w00 * t00[ch + j] + w01 * t01[ch + j] + w10 * t10[ch + j] + w11 * t11[ch + j];
        });
      }
    }
  }
}

// x [N, C, H, W] with any strides -> the zero-padded channels-last table.
template <typename T>
void make_table(const Deform& d, const T* x, const int64_t* xs, T* table, int threads) {
  const int64_t Hp = d.H + 3, Wp = d.W + 3, C = d.C;
  parallel_for(d.N * Hp, threads, grain_for(d.N * Hp, threads, 4), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / Hp, yp = i % Hp, y = yp - 1;
      T* row = table + i * Wp * C;
      if (y < 0 || y >= d.H) {
        std::fill(row, row + Wp * C, T(0));
        continue;
      }
      std::fill(row, row + C, T(0));
      std::fill(row + (d.W + 1) * C, row + Wp * C, T(0));
      const T* src = x + n * xs[0] + y * xs[2];
      if (xs[1] == 1) {
        for (int64_t xx = 0; xx < d.W; ++xx) std::copy(src + xx * xs[3], src + xx * xs[3] + C, row + (xx + 1) * C);
      } else {
        // blocks of 16 channels: each read run stays in a few lines while a row fills
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          const int64_t c1 = std::min(C, c0 + 16);
          for (int64_t xx = 0; xx < d.W; ++xx)
            for (int64_t c = c0; c < c1; ++c) row[(xx + 1) * C + c] = src[c * xs[1] + xx * xs[3]];
        }
      }
    }
  });
}

// out: [N, Cout, Ho, Wo], contiguous (channels_last = 0) or channels-last (1).
template <typename T>
void deform_forward(const Deform& d, const T* x, const int64_t* xs, const T* offset, const T* mask, const T* weight,
                    const T* bias, T* out, int channels_last, T* table, int threads) {
  make_table(d, x, xs, table, threads);
  const int64_t L = d.L(), bps = d.blocks_per_sample(), Kc = d.Kc(), Kg = d.Kg(), Og = d.Og();
  run_team(d.N * bps, threads, [&](int64_t first, Team& team) {
    SequentialBlas sequential;
    std::unique_ptr<T[]> cols(new T[d.block * Kc]);
    for (int64_t b = first; b >= 0; b = team.claim()) {
      const int64_t n = b / bps, l0 = (b % bps) * d.block, l1 = std::min(L, l0 + d.block), r = l1 - l0;
      sample_block(d, table, offset, mask, n, l0, l1, cols.get());
      for (int64_t gc = 0; gc < d.groups; ++gc) {
        const T* w = weight + gc * Og * Kg;  // [Og, Kg] row-major = column-major (Kg x Og)
        if (channels_last) {
          // rows [r, Cout]: column-major (Cout x r); C(o, l) = W(o, k) cols(l, k)
          gemm('T', 'N', Og, r, Kg, w, Kg, cols.get() + gc * Kg, Kc, T(0), out + (n * L + l0) * d.Cout + gc * Og, d.Cout);
        } else {
          // planes [Cout, L]: column-major (L x Cout); C(l, o) = cols(l, k) W(o, k)
          gemm('T', 'N', r, Og, Kg, cols.get() + gc * Kg, Kc, w, Kg, T(0), out + (n * d.Cout + gc * Og) * L + l0, L);
        }
      }
      if (bias) {
        for (int64_t o = 0; o < d.Cout; ++o) {
          if (channels_last) {
            for (int64_t l = l0; l < l1; ++l) out[(n * L + l) * d.Cout + o] += bias[o];
          } else {
            T* dst = out + (n * d.Cout + o) * L;
            for (int64_t l = l0; l < l1; ++l) dst[l] += bias[o];
          }
        }
      }
      team.complete();
    }
  });
}

// What one worker of the backward accumulates: the main thread's sums are the outputs
// themselves, a helper's are private and added in at the end.
template <typename T>
struct BackwardSums {
  T* grad_table;
  T* grad_weight;
  T* grad_bias;
  std::vector<T> own_table, own_weight, own_bias;
};

// The backward: need = (input, offset, mask, weight, bias). go: [N, Cout, Ho, Wo]
// contiguous or channels-last (go_channels_last). Outputs: grad_table (zeroed, table
// layout), grad_offset/grad_mask (written), grad_weight [Cout, Kg] in column order
// (zeroed), grad_bias [Cout] (zeroed); null when not needed.
template <typename T>
void deform_backward(const Deform& d, const T* x, const int64_t* xs, const T* offset, const T* mask, const T* weight,
                     const T* go, int go_channels_last, T* table, T* grad_table, T* grad_x, const int64_t* gxs,
                     T* grad_offset, T* grad_mask, T* grad_weight, T* grad_bias, int threads) {
  make_table(d, x, xs, table, threads);
  const int64_t Hp = d.H + 3, Wp = d.W + 3;
  if (grad_table) {
    parallel_for(d.N * Hp, threads, grain_for(d.N * Hp, threads, 4), [&](int64_t b, int64_t e) {
      std::fill(grad_table + b * Wp * d.C, grad_table + e * Wp * d.C, T(0));
    });
  }
  const int64_t L = d.L(), bps = d.blocks_per_sample(), Kc = d.Kc(), Kg = d.Kg(), Og = d.Og(), taps = d.taps();
  const int64_t Cg = d.Cg(), dx = d.G * Cg, dy = (d.W + 3) * d.G * Cg;
  const int64_t table_size = d.N * (d.H + 3) * (d.W + 3) * d.C, weight_size = d.Cout * Kg;
  const bool sampling = grad_table || grad_offset || grad_mask;
  std::mutex helpers_lock;
  std::vector<std::unique_ptr<BackwardSums<T>>> helpers;
  const std::thread::id caller = std::this_thread::get_id();
  run_team(d.N * bps, threads, [&](int64_t first, Team& team) {
    SequentialBlas sequential;
    std::vector<T> cols(grad_weight ? d.block * Kc : 0), gcols(sampling ? d.block * Kc : 0);
    BackwardSums<T>* sums;
    BackwardSums<T> mine{grad_table, grad_weight, grad_bias, {}, {}, {}};
    std::unique_ptr<BackwardSums<T>> own;
    if (std::this_thread::get_id() == caller) {
      sums = &mine;
    } else {
      own.reset(new BackwardSums<T>{nullptr, nullptr, nullptr, {}, {}, {}});
      if (grad_table) own->own_table.assign(table_size, T(0)), own->grad_table = own->own_table.data();
      if (grad_weight) own->own_weight.assign(weight_size, T(0)), own->grad_weight = own->own_weight.data();
      if (grad_bias) own->own_bias.assign(d.Cout, T(0)), own->grad_bias = own->own_bias.data();
      sums = own.get();
    }
    for (int64_t b = first; b >= 0; team.complete(), b = team.claim()) {
      const int64_t n = b / bps, l0 = (b % bps) * d.block, l1 = std::min(L, l0 + d.block), r = l1 - l0;
      // go's block as a column-major (r x Cout) [planes] or (Cout x r) [rows] matrix
      const T* gb = go_channels_last ? go + (n * L + l0) * d.Cout : go + n * d.Cout * L + l0;
      if (sums->grad_bias) {
        for (int64_t o = 0; o < d.Cout; ++o) {
          T s = 0;
          if (go_channels_last) {
            for (int64_t l = 0; l < r; ++l) s += gb[l * d.Cout + o];
          } else {
            for (int64_t l = 0; l < r; ++l) s += gb[o * L + l];
          }
          sums->grad_bias[o] += s;
        }
      }
      if (sums->grad_weight) sample_block(d, table, offset, mask, n, l0, l1, cols.data());
      for (int64_t gc = 0; gc < d.groups; ++gc) {
        const T* w = weight + gc * Og * Kg;
        const T* g = go_channels_last ? gb + gc * Og : gb + gc * Og * L;
        const char gt = go_channels_last ? 'T' : 'N';  // op(go) = (r x Og)
        const int64_t ldg = go_channels_last ? d.Cout : L;
        if (sums->grad_weight) {
          // grad_W (Kg x Og, column-major) += cols(k, l) go(l, o)
          gemm('N', gt, Kg, Og, r, cols.data() + gc * Kg, Kc, g, ldg, T(1), sums->grad_weight + gc * Og * Kg, Kg);
        }
        if (sampling) {
          // gcols (Kg x r, column-major) = W(k, o) go(o, l)
          gemm('N', go_channels_last ? 'N' : 'T', Kg, r, Og, w, Kg, g, ldg, T(0), gcols.data() + gc * Kg, Kc);
        }
      }
      if (!sampling) continue;
      for (int64_t l = l0; l < l1; ++l) {
        const T* grow = gcols.data() + (l - l0) * Kc;
        for (int64_t grp = 0; grp < d.G; ++grp) {
          for (int64_t t = 0; t < taps; ++t) {
            const Corners<T> c = point(d, offset, n, l, grp, t);
            const int64_t oi = ((n * d.G + grp) * taps + t) * 2 * L + l, mi = ((n * d.G + grp) * taps + t) * L + l;
            const T m = mask ? mask[mi] : T(1);
            const T fy = c.fy, fx = c.fx;
            const T w00 = (1 - fy) * (1 - fx) * m, w01 = (1 - fy) * fx * m, w10 = fy * (1 - fx) * m, w11 = fy * fx * m;
            const T* t00 = table + c.row * Cg;
            T* g00 = sums->grad_table ? sums->grad_table + c.row * Cg : nullptr;
            T d00 = 0, d01 = 0, d10 = 0, d11 = 0;
            channel_runs(d, grp, t, [&](int64_t ch, int64_t col, int64_t run) {
              const T* gc = grow + col;
              if (grad_offset || grad_mask) {
                for (int64_t j = 0; j < run; ++j) {
                  const T v = gc[j];
                  d00 += v * t00[ch + j];
                  d01 += v * t00[dx + ch + j];
                  d10 += v * t00[dy + ch + j];
                  d11 += v * t00[dy + dx + ch + j];
                }
              }
              if (g00) {
                for (int64_t j = 0; j < run; ++j) {
                  const T v = gc[j];
                  g00[ch + j] += w00 * v;
                  g00[dx + ch + j] += w01 * v;
                  g00[dy + ch + j] += w10 * v;
                  g00[dy + dx + ch + j] += w11 * v;
                }
              }
            });
            if (grad_mask) grad_mask[mi] = d00 * (1 - fy) * (1 - fx) + d01 * (1 - fy) * fx + d10 * fy * (1 - fx) + d11 * fy * fx;
            if (grad_offset) {
              const T gy = ((d10 - d00) * (1 - fx) + (d11 - d01) * fx) * m;
              const T gx = ((d01 - d00) * (1 - fy) + (d11 - d10) * fy) * m;
              grad_offset[oi] = c.live_y ? gy : T(0);
              grad_offset[oi + L] = c.live_x ? gx : T(0);
            }
          }
        }
      }
    }
    if (own) {
      std::lock_guard<std::mutex> lock(helpers_lock);
      helpers.push_back(std::move(own));
    }
  });
  // the helpers' sums, added in once every claimed block is done
  for (auto& h : helpers) {
    if (grad_weight)
      for (int64_t i = 0; i < weight_size; ++i) grad_weight[i] += h->own_weight[i];
    if (grad_bias)
      for (int64_t o = 0; o < d.Cout; ++o) grad_bias[o] += h->own_bias[o];
  }
  if (!grad_table) return;
  // grad_x [N, C, H, W] (any strides) = the inner part of the table gradient, with the
  // helpers' tables added in
  parallel_for(d.N * d.H, threads, grain_for(d.N * d.H, threads, 4), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / d.H, y = i % d.H;
      T* row = grad_table + ((n * Hp + y + 1) * Wp + 1) * d.C;
      for (auto& h : helpers) {
        const T* other = h->own_table.data() + ((n * Hp + y + 1) * Wp + 1) * d.C;
        for (int64_t j = 0; j < d.W * d.C; ++j) row[j] += other[j];
      }
      T* dst = grad_x + n * gxs[0] + y * gxs[2];
      if (gxs[1] == 1) {
        for (int64_t xx = 0; xx < d.W; ++xx) std::copy(row + xx * d.C, row + (xx + 1) * d.C, dst + xx * gxs[3]);
      } else {
        for (int64_t c0 = 0; c0 < d.C; c0 += 16) {
          const int64_t c1 = std::min(d.C, c0 + 16);
          for (int64_t xx = 0; xx < d.W; ++xx)
            for (int64_t c = c0; c < c1; ++c) dst[c * gxs[1] + xx * gxs[3]] = row[xx * d.C + c];
        }
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
                             const T* rois, int64_t K, int64_t C, int64_t oh, int64_t ow, int64_t N, int64_t H,  \
                             int64_t W, T* grad_in, int64_t channel_stride, int threads) {                      \
    roi_pool_backward<T>(grad, gs, arg, as, rois, K, C, oh, ow, N, H, W, grad_in, channel_stride, threads);      \
  }                                                                                                              \
  void roi_align_forward_##S(const T* x, int64_t H, int64_t W, int64_t C, const T* rois, double scale, int64_t K,   \
                             int64_t oh, int64_t ow, int64_t sampling_ratio, int aligned, T* out, int threads) { \
    roi_align_forward<T>(x, H, W, C, rois, scale, K, oh, ow, sampling_ratio, aligned, out, threads);             \
  }                                                                                                              \
  void to_rows_##S(const T* x, const int64_t* xs, int64_t N, int64_t C, int64_t H, int64_t W, T* rows,             \
                   int threads) {                                                                                \
    to_rows<T>(x, xs, N, C, H, W, rows, threads);                                                                \
  }

CONVOLAB_ROI_POOL(float, f32)
CONVOLAB_ROI_POOL(double, f64)

int convolab_set_blas(void* sgemm, void* dgemm, void* threads_local) {
  blas.s = reinterpret_cast<sgemm_fn>(sgemm);
  blas.d = reinterpret_cast<dgemm_fn>(dgemm);
  blas.local = reinterpret_cast<threads_local_fn>(threads_local);
  return blas.s && blas.d && blas.local;
}

static Deform deform_args(const int64_t* a) {
  return Deform{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17]};
}

#define CONVOLAB_DEFORM(T, S)                                                                                    \
  void deform_forward_##S(const int64_t* args, const T* x, const int64_t* xs, const T* offset, const T* mask,     \
                          const T* weight, const T* bias, T* out, int channels_last, T* table, int threads) {    \
    deform_forward<T>(deform_args(args), x, xs, offset, mask, weight, bias, out, channels_last, table, threads);   \
  }                                                                                                              \
  void deform_backward_##S(const int64_t* args, const T* x, const int64_t* xs, const T* offset, const T* mask,    \
                           const T* weight, const T* go, int go_channels_last, T* table, T* grad_table, T* grad_x, \
                           const int64_t* gxs, T* grad_offset, T* grad_mask, T* grad_weight, T* grad_bias,       \
                           int threads) {                                                                        \
    deform_backward<T>(deform_args(args), x, xs, offset, mask, weight, go, go_channels_last, table, grad_table,   \
                       grad_x, gxs, grad_offset, grad_mask, grad_weight, grad_bias, threads);                    \
  }

CONVOLAB_DEFORM(float, f32)
CONVOLAB_DEFORM(double, f64)

}  // extern "C"
"""

# ctypes signatures: p = pointer, i = int64, d = double, t = int (thread count)
_SIGNATURES = {
    "roi_pool_forward": "piiipdiiippt",
    "roi_pool_backward": "ppppp" "iiiiiii" "pit",
    "roi_align_forward": "piiipdiiiitpt",
    "to_rows": "ppiiiipt",
    "deform_forward": "pppppppp" "t" "pt",
    "deform_backward": "ppppppp" "t" "pppp" "pppp" "t",
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
                _state["blas"] = _connect_blas(lib)
                if not _state["blas"]:
                    _state["reason"] += " (no BLAS found in torch: deformable convolution runs its torch path)"
            except Exception as exc:  # no compiler, no ninja, a failed build: the torch path runs
                _state["reason"] = f"unavailable ({type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''})"
        _state["tried"] = True
        return _state["lib"]


def _connect_blas(lib: ctypes.CDLL) -> bool:
    """Hand torch's own BLAS (``sgemm_``, ``dgemm_`` and MKL's per-thread thread count) to the
    deformable kernels, which call it from their workers. False when torch has none of these."""
    import glob

    lib.convolab_set_blas.argtypes = [ctypes.c_void_p] * 3
    lib.convolab_set_blas.restype = ctypes.c_int
    for path in sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.*"))):
        try:
            torch_cpu = ctypes.CDLL(path)
            names = ("sgemm_", "dgemm_", "MKL_Set_Num_Threads_Local")  # the C interface (by value)
            addresses = [ctypes.cast(getattr(torch_cpu, name), ctypes.c_void_p).value for name in names]
        except (OSError, AttributeError):
            continue
        return bool(lib.convolab_set_blas(*addresses))
    return False


def blas() -> Optional[ctypes.CDLL]:
    """The library if its deformable kernels can call torch's BLAS, else None."""
    lib = library()
    return lib if lib is not None and _state.get("blas") else None


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
