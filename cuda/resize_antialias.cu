// Antialiased bilinear resize in float32, matching torch `F.interpolate(mode="bilinear", align_corners=False,
// antialias=True)` as the twin reproduces it bit for bit: runtime/ops/resize.py::resize_bilinear_antialias, and
// the image predictor's input, runtime/ops/preprocess.py::preprocess_image (ToTensor / 255, resize, Normalize).
//
// Separable like the twin: a pass along W (rows), then along H (columns); a pass whose size is unchanged is
// skipped by the host (or, in the preprocessing kernels, done as an identity by `identity`). The taps and
// weights are the twin's own tables (`_antialias_table`), uploaded by the host: idx/w [out, k], plain [out, k].
// The sum is accumulated in the twin's order and rounding: the first tap as a rounded product, then each tap
// either added as a rounded product (plain) or fused (fma), as torch's AVX2 kernel does (see the twin).
// Compiled with --fmad=false, so nothing else is contracted.
//
// Launch: 2-D blocks over (x, y) of the pass's output, gridDim.z over planes (channels or leading dims).

struct Taps {
    const int* __restrict__ idx;             // [out, k] input index of each tap
    const float* __restrict__ w;             // [out, k] weight of each tap (0 for unused taps)
    const unsigned char* __restrict__ plain; // [out, k] 1: tap added as a rounded product, 0: fused
    int k;
};

// Float value of input sample i along the resampled axis: base[i * stride] (float32 input).
struct FloatLine {
    const float* __restrict__ base;
    long long stride;
    __device__ float operator()(int i) const { return base[i * stride]; }
};

// ToTensor of one channel of an interleaved RGB uint8 row: v / 255 in float32 (IEEE division, as the twin).
struct RgbLine {
    const unsigned char* __restrict__ base;  // the row's first pixel, channel c
    __device__ float operator()(int i) const { return __fdiv_rn((float)base[3 * i], 255.0f); }
};

template <class Line>
__device__ __forceinline__ float aa_sum(const Line& line, const Taps& t, int o) {
    const int* idx = t.idx + (long long)o * t.k;
    const float* w = t.w + (long long)o * t.k;
    const unsigned char* plain = t.plain + (long long)o * t.k;
    float acc = __fmul_rn(line(idx[0]), w[0]);
    for (int j = 1; j < t.k; ++j) {
        const float x = line(idx[j]);
        acc = plain[j] ? __fadd_rn(acc, __fmul_rn(x, w[j])) : __fmaf_rn(x, w[j], acc);
    }
    return acc;
}

// W pass: src [P, H, in_w] -> dst [P, H, out_w] float32.
extern "C" __global__ void aa_rows(const float* __restrict__ src, float* __restrict__ dst, int h, int in_w,
                                   int out_w, const int* __restrict__ idx, const float* __restrict__ w,
                                   const unsigned char* __restrict__ plain, int k) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= out_w || y >= h) return;
    const long long row = (long long)blockIdx.z * h + y;
    const FloatLine line{src + row * in_w, 1};
    dst[row * out_w + x] = aa_sum(line, Taps{idx, w, plain, k}, x);
}

// H pass: src [P, in_h, width] -> dst [P, out_h, width] float32.
extern "C" __global__ void aa_cols(const float* __restrict__ src, float* __restrict__ dst, int in_h, int out_h,
                                   int width, const int* __restrict__ idx, const float* __restrict__ w,
                                   const unsigned char* __restrict__ plain, int k) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= out_h) return;
    const long long p = blockIdx.z;
    const FloatLine line{src + p * in_h * width + x, width};
    dst[(p * out_h + y) * width + x] = aa_sum(line, Taps{idx, w, plain, k}, y);
}

// Image preprocessing, W pass: src [in_h, in_w, 3] uint8 RGB -> dst [3, in_h, out_w] float32, the ToTensor'd
// (/ 255) image resized along W. identity != 0 (in_w == out_w): the twin skips this pass, so just / 255.
extern "C" __global__ void aa_rows_rgb(const unsigned char* __restrict__ src, float* __restrict__ dst, int in_h,
                                       int in_w, int out_w, const int* __restrict__ idx,
                                       const float* __restrict__ w, const unsigned char* __restrict__ plain,
                                       int k, int identity) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int c = blockIdx.z;  // channel
    if (x >= out_w || y >= in_h) return;
    const RgbLine line{src + (long long)y * in_w * 3 + c};
    const float v = identity ? line(x) : aa_sum(line, Taps{idx, w, plain, k}, x);
    dst[((long long)c * in_h + y) * out_w + x] = v;
}

// Image preprocessing, H pass + Normalize: src [3, in_h, width] float32 -> dst [3, out_h, width] float32
// ((v - mean[c]) / std[c], a rounded subtraction then an IEEE division, as the twin). identity != 0
// (in_h == out_h): no resampling, only the normalisation.
extern "C" __global__ void aa_cols_normalize(const float* __restrict__ src, float* __restrict__ dst, int in_h,
                                             int out_h, int width, const int* __restrict__ idx,
                                             const float* __restrict__ w, const unsigned char* __restrict__ plain,
                                             int k, int identity, float mean0, float mean1, float mean2,
                                             float std0, float std1, float std2) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int c = blockIdx.z;
    if (x >= width || y >= out_h) return;
    const FloatLine line{src + (long long)c * in_h * width + x, width};
    const float v = identity ? line(y) : aa_sum(line, Taps{idx, w, plain, k}, y);
    const float mean = c == 0 ? mean0 : (c == 1 ? mean1 : mean2);
    const float sd = c == 0 ? std0 : (c == 1 ? std1 : std2);
    dst[((long long)c * out_h + y) * width + x] = __fdiv_rn(__fsub_rn(v, mean), sd);
}
