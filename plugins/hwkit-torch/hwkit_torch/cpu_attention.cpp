// hwkit::attention: softmax(q·kᵀ·scale + mask)·v on the CPU for fp32, the op the converter's
// attention pattern runs as on the cpu backend (hwkit_torch/cpu_attention.py builds and loads it).
//
// Why not ATen's scaled_dot_product_attention: its CPU kernel computes its small per-block
// products with MKL's sgemm, which runs without AVX-512 on AMD CPUs; this kernel computes them with
// oneDNN's brgemm micro-kernel through ATen (at::native::cpublas::brgemm, the call ATen's own
// reduced-precision attention makes). Each (batch, head, block of 64 or 32 queries) is one task: one
// brgemm for the scores of the whole key range, an exact softmax over each row (the whole row is in
// hand, so no running rescale as in flash attention), one brgemm into the output. Keys up to
// kMaxKeys; longer key ranges, other dtypes, boolean masks and unequal batch/head counts go to ATen.
// The output is laid out [batch, query, head, dim] and returned as a [batch, head, query, dim]
// view, as ATen's CPU kernel does, so that merging the heads afterwards is free.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/CPUBlas.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kMaxKeys = 4096;  // a score row block of 64 x 4096 floats is 1 MiB per thread

float reduce(const Vec& v, bool take_max) {
  float lanes[Vec::size()];
  v.store(lanes);
  float r = lanes[0];
  for (int64_t l = 1; l < Vec::size(); ++l) r = take_max ? std::max(r, lanes[l]) : r + lanes[l];
  return r;
}

// row <- softmax(row * scale + mask_row); mask_step 0 broadcasts one mask value over the row.
void softmax_row(float* row, const float* mask_row, int64_t mask_step, int64_t n, float scale) {
  const Vec vscale(scale);
  Vec vmax(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    Vec x = Vec::loadu(row + j) * vscale;
    if (mask_row) x = x + (mask_step == 1 ? Vec::loadu(mask_row + j) : Vec(mask_row[0]));
    x.store(row + j);
    vmax = at::vec::maximum(vmax, x);
  }
  float top = reduce(vmax, true);
  for (; j < n; ++j) {
    row[j] = row[j] * scale + (mask_row ? mask_row[j * mask_step] : 0.f);
    top = std::max(top, row[j]);
  }
  // A row masked entirely (-inf) gives NaN, as ONNX's Softmax does; the converter keeps a graph's
  // own guard against it (Where(IsNaN(p), 0, p)) after the op.
  const Vec vtop(top);
  Vec vsum(0.f);
  j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    Vec e = (Vec::loadu(row + j) - vtop).exp();
    e.store(row + j);
    vsum = vsum + e;
  }
  float sum = reduce(vsum, false);
  for (; j < n; ++j) {
    row[j] = std::exp(row[j] - top);
    sum += row[j];
  }
  const float inv = 1.f / sum;
  const Vec vinv(inv);
  j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) (Vec::loadu(row + j) * vinv).store(row + j);
  for (; j < n; ++j) row[j] *= inv;
}

bool fits(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::optional<at::Tensor>& mask) {
  return q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat
      && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(2) <= kMaxKeys && k.size(2) == v.size(2)
      && q.size(3) == k.size(3) && q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1)
      && q.size(1) == v.size(1) && q.device().is_cpu()
      && (!mask || (mask->scalar_type() == at::kFloat && mask->dim() <= 4));
}

at::Tensor attention(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_,
                     const std::optional<at::Tensor>& mask_, double scale) {
  if (!fits(q_, k_, v_, mask_)) {
    at::Tensor ref = at::scaled_dot_product_attention(q_, k_, v_, mask_, 0.0, false, scale);
    if (ref.dim() != 4) return ref;
    // the layout the op declares (cpu_attention.py's fake), whichever kernel ATen chose
    at::Tensor out = at::empty({ref.size(0), ref.size(2), ref.size(1), ref.size(3)}, ref.options());
    return out.permute({0, 2, 1, 3}).copy_(ref);
  }
  // brgemm reads rows of q and v with a leading dimension: each row's elements contiguous
  const at::Tensor q = q_.stride(3) == 1 && q_.stride(2) >= q_.size(3) ? q_ : q_.contiguous();
  const at::Tensor v = v_.stride(3) == 1 && v_.stride(2) >= v_.size(3) ? v_ : v_.contiguous();
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Lk = k_.size(2), Dv = v.size(3);
  const at::Tensor k = k_.stride(3) == 1 ? k_ : k_.contiguous();
  at::Tensor out = at::empty({B, Lq, H, Dv}, q.options()).permute({0, 2, 1, 3});
  at::Tensor mask;
  if (mask_) {
    mask = mask_->expand({B, H, Lq, Lk});
    if (mask.stride(3) > 1) mask = mask.contiguous();
  }
  if (B * H * Lq == 0) return out;
  // 64 queries a task, 32 where that leaves fewer than two tasks per thread (measured alike at
  // the encoder's [1, 4, 128, 64]; larger blocks reuse each brgemm's right operand more)
  const int64_t block = B * H * ((Lq + 63) / 64) >= 2 * at::get_num_threads() ? 64 : 32;
  const int64_t blocks = (Lq + block - 1) / block;
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  const float s = static_cast<float>(scale);
  at::parallel_for(0, B * H * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(block * Lk);
    // kᵀ of the task's (batch, head), [D, Lk]: brgemm's right operand. A thread's tasks are
    // consecutive, so a head's blocks reuse it. (ATen's transpose copy of the strided view took
    // 28 us of the encoder's 85 us attention; this is a few us, and parallel.)
    std::vector<float> kt(D * Lk);
    int64_t packed = -1;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / (H * blocks), h = task / blocks % H, i0 = task % blocks * block;
      const int64_t m = std::min(block, Lq - i0);
      if (packed != b * H + h) {
        const float* kh = kp + b * k.stride(0) + h * k.stride(1);
        for (int64_t j0 = 0; j0 < Lk; j0 += 16)  // 16 keys at a time: their rows stay in L1
          for (int64_t d = 0; d < D; ++d)
            for (int64_t j = j0; j < std::min(j0 + 16, Lk); ++j) kt[d * Lk + j] = kh[j * k.stride(2) + d];
        packed = b * H + h;
      }
      at::native::cpublas::brgemm(m, Lk, D, q.stride(2), Lk, Lk, false,
                                  qp + b * q.stride(0) + h * q.stride(1) + i0 * q.stride(2),
                                  kt.data(), scores.data(), false);
      for (int64_t r = 0; r < m; ++r) {
        const float* mask_row = mp ? mp + b * mask.stride(0) + h * mask.stride(1) + (i0 + r) * mask.stride(2) : nullptr;
        softmax_row(scores.data() + r * Lk, mask_row, mp ? mask.stride(3) : 1, Lk, s);
      }
      at::native::cpublas::brgemm(m, Dv, Lk, Lk, v.stride(2), out.stride(2), false, scores.data(),
                                  vp + b * v.stride(0) + h * v.stride(1),
                                  op + b * out.stride(0) + h * out.stride(1) + i0 * out.stride(2), false);
    }
    at::native::cpublas::brgemm_release(false);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(hwkit, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, Tensor? mask, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(hwkit, CPU, m) {
  m.impl("attention", attention);
}
