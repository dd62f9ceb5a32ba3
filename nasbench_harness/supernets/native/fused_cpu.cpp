// Fused CPU kernels for the supernets' training hot path (loaded by nasbench_harness/supernets/fused.py).
//
// relu(batch_norm(x)) with batch statistics, for x laid out as rows of channels (a channels-last
// NCHW tensor viewed as (N*H*W, C)). Native PyTorch runs it as three kernels forward and three
// backward, each a pass over the tensor; here it is two passes each way. Sums are taken about a
// per-channel shift, in float over blocks of rows and in double across blocks, which also makes
// the gradients more accurate than native float32 channels-last batch norm.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kTask = 2048;  // rows per parallel task
constexpr int64_t kBlock = 64;   // rows summed in float before adding to the double sums

// Calls FN<C> for the channel counts of the supernets (compile-time C: unrolled, vectorised
// loops with the accumulators in registers), FN<0> (runtime C) for any other.
#define NBH_DISPATCH_C(C, FN, ...)       \
  switch (C) {                           \
    case 16: FN<16>(__VA_ARGS__); break; \
    case 32: FN<32>(__VA_ARGS__); break; \
    case 64: FN<64>(__VA_ARGS__); break; \
    case 128: FN<128>(__VA_ARGS__); break; \
    default: FN<0>(__VA_ARGS__);         \
  }

// Per-channel sums over rows [r0, r1), added to sum and sumd:
//   forward (kMasked false): sum of d and of d * d, d = x - k;
//   backward (kMasked true): sum of gz and of gz * (x - k), gz = g where x * a + b > 0, else 0.
template <int64_t CT, bool kMasked>
void row_sums(const float* __restrict__ x, const float* __restrict__ g, const float* __restrict__ a,
              const float* __restrict__ b, const float* __restrict__ k, int64_t r0, int64_t r1, int64_t c_rt,
              double* __restrict__ sum, double* __restrict__ sumd) {
  const int64_t C = CT > 0 ? CT : c_rt;
  std::vector<float> heap(CT > 0 ? 0 : 2 * C);
  float stack[CT > 0 ? 2 * CT : 1];
  float* __restrict__ s = CT > 0 ? stack : heap.data();
  float* __restrict__ q = s + C;
  for (int64_t start = r0; start < r1; start += kBlock) {
    const int64_t end = std::min(r1, start + kBlock);
    for (int64_t c = 0; c < C; ++c) s[c] = q[c] = 0.0f;
    for (int64_t r = start; r < end; ++r) {
      const float* __restrict__ xr = x + r * C;
      if constexpr (kMasked) {
        const float* __restrict__ gr = g + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float gz = xr[c] * a[c] + b[c] > 0.0f ? gr[c] : 0.0f;
          s[c] += gz;
          q[c] += gz * (xr[c] - k[c]);
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const float d = xr[c] - k[c];
          s[c] += d;
          q[c] += d * d;
        }
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      sum[c] += s[c];
      sumd[c] += q[c];
    }
  }
}

template <int64_t CT>
void row_sums_forward(const float* x, const float* k, int64_t r0, int64_t r1, int64_t C, double* sum, double* sumd) {
  row_sums<CT, false>(x, nullptr, nullptr, nullptr, k, r0, r1, C, sum, sumd);
}

template <int64_t CT>
void row_sums_backward(const float* x, const float* g, const float* a, const float* b, const float* k, int64_t r0,
                       int64_t r1, int64_t C, double* sum, double* sumd) {
  row_sums<CT, true>(x, g, a, b, k, r0, r1, C, sum, sumd);
}

// row_sums over all R rows, in parallel tasks; returns {sum, sumd} per channel.
template <bool kMasked>
std::pair<std::vector<double>, std::vector<double>> channel_sums(const float* x, const float* g, const float* a,
                                                                 const float* b, const float* k, int64_t R,
                                                                 int64_t C) {
  const int64_t tasks = (R + kTask - 1) / kTask;
  std::vector<double> part(tasks * 2 * C, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      double* s = part.data() + t * 2 * C;
      const int64_t r0 = t * kTask, r1 = std::min(R, r0 + kTask);
      if constexpr (kMasked) {
        NBH_DISPATCH_C(C, row_sums_backward, x, g, a, b, k, r0, r1, C, s, s + C)
      } else {
        NBH_DISPATCH_C(C, row_sums_forward, x, k, r0, r1, C, s, s + C)
      }
    }
  });
  std::vector<double> sum(C, 0.0), sumd(C, 0.0);
  for (int64_t t = 0; t < tasks; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      sum[c] += part[t * 2 * C + c];
      sumd[c] += part[t * 2 * C + C + c];
    }
  }
  return {sum, sumd};
}

// The forward's rows: y = relu(x * a + b).
template <int64_t CT>
void relu_rows(const float* __restrict__ x, const float* __restrict__ a, const float* __restrict__ b,
               float* __restrict__ y, int64_t r0, int64_t r1, int64_t c_rt) {
  const int64_t C = CT > 0 ? CT : c_rt;
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict__ xr = x + r * C;
    float* __restrict__ yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) yr[c] = std::max(xr[c] * a[c] + b[c], 0.0f);
  }
}

// The backward's rows: grad_x = k1 * gz + k2 * x + k3, gz = g where x * a + b > 0, else 0.
template <int64_t CT>
void grad_rows(const float* __restrict__ x, const float* __restrict__ g, const float* __restrict__ a,
               const float* __restrict__ b, const float* __restrict__ k1, const float* __restrict__ k2,
               const float* __restrict__ k3, float* __restrict__ out, int64_t r0, int64_t r1, int64_t c_rt) {
  const int64_t C = CT > 0 ? CT : c_rt;
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict__ xr = x + r * C;
    const float* __restrict__ gr = g + r * C;
    float* __restrict__ o = out + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const float gz = xr[c] * a[c] + b[c] > 0.0f ? gr[c] : 0.0f;
      o[c] = k1[c] * gz + k2[c] * xr[c] + k3[c];
    }
  }
}

// a = weight * invstd and b = bias - mean * a per channel, computed the same way forward and
// backward, so that both see the same ReLU mask.
std::pair<std::vector<float>, std::vector<float>> affine(const at::Tensor& weight, const at::Tensor& bias,
                                                         const float* mean, const float* invstd, int64_t C) {
  const auto w = weight.contiguous();
  const auto bi = bias.contiguous();
  const float* wp = w.data_ptr<float>();
  const float* bp = bi.data_ptr<float>();
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; ++c) {
    a[c] = wp[c] * invstd[c];
    b[c] = bp[c] - mean[c] * a[c];
  }
  return {a, b};
}

void check_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 2 && t.is_contiguous(), name,
              " must be a contiguous 2-D float32 CPU tensor (rows x channels)");
}

void check_channels(const at::Tensor& t, int64_t C, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 1 && t.size(0) == C, name,
              " must be a float32 CPU vector of ", C, " channels");
}

}  // namespace

// relu(batch_norm(x)) with batch statistics; x (R, C). Returns {y, mean, invstd, biased variance}.
std::vector<at::Tensor> bn_relu_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                        double eps) {
  check_rows(x, "x");
  const int64_t R = x.size(0), C = x.size(1);
  TORCH_CHECK(R > 0, "batch norm needs at least one row");
  check_channels(weight, C, "weight");
  check_channels(bias, C, "bias");
  const float* xp = x.data_ptr<float>();
  const std::vector<float> shift(xp, xp + C);  // the first row: near the data, so the sums cancel little
  const auto [sum, sumsq] = channel_sums<false>(xp, nullptr, nullptr, nullptr, shift.data(), R, C);
  auto mean = at::empty({C}, x.options());
  auto invstd = at::empty({C}, x.options());
  auto var = at::empty({C}, x.options());
  for (int64_t c = 0; c < C; ++c) {
    const double d = sum[c] / R;
    const double v = std::max(sumsq[c] / R - d * d, 0.0);
    mean.data_ptr<float>()[c] = shift[c] + d;
    var.data_ptr<float>()[c] = v;
    invstd.data_ptr<float>()[c] = 1.0 / std::sqrt(v + eps);
  }
  const auto [a, b] = affine(weight, bias, mean.data_ptr<float>(), invstd.data_ptr<float>(), C);
  auto y = at::empty({R, C}, x.options());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, R, kTask, [&](int64_t begin, int64_t end) {
    NBH_DISPATCH_C(C, relu_rows, xp, a.data(), b.data(), yp, begin, end, C)
  });
  return {y, mean, invstd, var};
}

// Gradients of bn_relu_forward for the output gradient g (R, C): {grad_x (undefined unless
// need_x), grad_weight, grad_bias}.
std::vector<at::Tensor> bn_relu_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& weight,
                                         const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
                                         bool need_x) {
  check_rows(x, "x");
  check_rows(g, "grad");
  const int64_t R = x.size(0), C = x.size(1);
  TORCH_CHECK(g.size(0) == R && g.size(1) == C, "grad must have the shape of x");
  for (const auto* t : {&weight, &bias, &mean, &invstd}) check_channels(*t, C, "weight, bias, mean and invstd");
  const auto mean_c = mean.contiguous(), invstd_c = invstd.contiguous(), weight_c = weight.contiguous();
  const float* mp = mean_c.data_ptr<float>();
  const float* ip = invstd_c.data_ptr<float>();
  const float* wp = weight_c.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  const auto [a, b] = affine(weight, bias, mp, ip, C);
  const auto [sum_gz, sum_gz_dx] = channel_sums<true>(xp, gp, a.data(), b.data(), mp, R, C);
  auto grad_w = at::empty({C}, weight.options());
  auto grad_b = at::empty({C}, weight.options());
  std::vector<float> k1(C), k2(C), k3(C);
  for (int64_t c = 0; c < C; ++c) {
    const double sum_gz_xhat = sum_gz_dx[c] * ip[c];
    grad_w.data_ptr<float>()[c] = sum_gz_xhat;
    grad_b.data_ptr<float>()[c] = sum_gz[c];
    const double scale = static_cast<double>(wp[c]) * ip[c];
    const double per_x = -scale * ip[c] * sum_gz_xhat / R;
    k1[c] = scale;
    k2[c] = per_x;
    k3[c] = -scale * sum_gz[c] / R - per_x * mp[c];
  }
  at::Tensor grad_x;
  if (need_x) {
    grad_x = at::empty({R, C}, x.options());
    float* out = grad_x.data_ptr<float>();
    at::parallel_for(0, R, kTask, [&](int64_t begin, int64_t end) {
      NBH_DISPATCH_C(C, grad_rows, xp, gp, a.data(), b.data(), k1.data(), k2.data(), k3.data(), out, begin, end, C)
    });
  }
  return {grad_x, grad_w, grad_b};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bn_relu_forward", &bn_relu_forward, "relu(batch_norm(x)) with batch statistics, x as (rows, channels)");
  m.def("bn_relu_backward", &bn_relu_backward, "gradients of bn_relu_forward");
}
