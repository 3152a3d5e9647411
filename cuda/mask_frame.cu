// Per-frame mask output from low-res logits in one pass over the output pixels: bilinear upsampling
// (align_corners=False), the non-overlap constraint across objects, thresholding, and each object's area and
// XYXY box. Each stage can be switched off, so the same kernel is each twin on its own:
//   resize_bilinear (runtime/ops/resize.py)            upsample only, grid.z over planes;
//   apply_non_overlapping_constraints (ops/masks.py)   identity sizes, non_overlap, logits out;
//   threshold_masks (ops/masks.py)                     identity sizes, masks + stats out;
//   all three fused (the video predictor's per-frame output: resize to the video size, then non-overlap, then
//   `> 0`), which reads the 256x256 logits once per object and never writes the full-size logits.
//
// Interpolation uses the twin's own tables (`_linear_table`: i0, i1, w0, w1 per output row / column) and its
// rounding: W first, fma(x0, w0, x1 * w1) per axis, an axis of unchanged size not interpolated at all.
// Compiled with --fmad=false, so only the explicit fma is fused.
//
// Launch: blockDim = (32, rows); a warp is 32 consecutive pixels of one output row. gridDim.z = 1 with
// non_overlap (each thread loops over all objects: it needs every object's value at its pixel), else one
// plane per z. Dynamic shared memory: 5 ints per object of the block's range when stats are wanted.

#define FULL_MASK 0xffffffffu
#define INT_MAX_ 2147483647

// Warp-wide min / max of an int over all 32 lanes: sm_80's redux instruction (__reduce_*_sync), and a butterfly
// of shuffles on older GPUs (sm_70, sm_75), which gives every lane the same result.
__device__ __forceinline__ int warp_min(int v) {
#if __CUDA_ARCH__ >= 800
    return __reduce_min_sync(FULL_MASK, v);
#else
    for (int offset = 16; offset > 0; offset >>= 1) v = min(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
#endif
}

__device__ __forceinline__ int warp_max(int v) {
#if __CUDA_ARCH__ >= 800
    return __reduce_max_sync(FULL_MASK, v);
#else
    for (int offset = 16; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
#endif
}

struct Axis {                  // per-output interpolation table of one axis (twin `_linear_table`)
    const int* __restrict__ i0;
    const int* __restrict__ i1;
    const float* __restrict__ w0;
    const float* __restrict__ w1;
};

// Value of one object plane at output (x, y); `same_w` / `same_h`: that axis is not interpolated.
__device__ __forceinline__ float sample(const float* __restrict__ plane, int in_w, bool same_w, bool same_h,
                                        int x, int xa, int xb, float wx0, float wx1, int y, int ya, int yb,
                                        float wy0, float wy1) {
    if (same_h) {
        const float* r = plane + (long long)y * in_w;
        return same_w ? r[x] : __fmaf_rn(r[xa], wx0, __fmul_rn(r[xb], wx1));
    }
    const float* ra = plane + (long long)ya * in_w;
    const float* rb = plane + (long long)yb * in_w;
    float a, b;
    if (same_w) {
        a = ra[x];
        b = rb[x];
    } else {
        a = __fmaf_rn(ra[xa], wx0, __fmul_rn(ra[xb], wx1));
        b = __fmaf_rn(rb[xa], wx0, __fmul_rn(rb[xb], wx1));
    }
    return __fmaf_rn(a, wy0, __fmul_rn(b, wy1));
}

// stats: area [O] uint64 and box [O, 4] int32 (x0, y0, x1, y1); x0/y0 start at INT_MAX and x1/y1 at -1 so
// atomicMin / atomicMax need no first-pixel case.
extern "C" __global__ void mask_stats_init(unsigned long long* __restrict__ area, int* __restrict__ box, int n) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n) return;
    area[o] = 0ull;
    box[4 * o + 0] = INT_MAX_;
    box[4 * o + 1] = INT_MAX_;
    box[4 * o + 2] = -1;
    box[4 * o + 3] = -1;
}

// box32 [O, 4] int32 -> box64 [O, 4] int64, [0, 0, 0, 0] for an empty mask (the twin's convention).
extern "C" __global__ void mask_stats_finalize(const unsigned long long* __restrict__ area,
                                               const int* __restrict__ box32, long long* __restrict__ box64,
                                               int n) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n) return;
    const bool empty = area[o] == 0ull;
    for (int j = 0; j < 4; ++j) box64[4 * o + j] = empty ? 0ll : (long long)box32[4 * o + j];
}

// src [O, in_h, in_w] float32 logits. Outputs, each optional (null): logits_out [O, out_h, out_w] float32
// (after the constraint), masks [O, out_h, out_w] uint8 (logit > threshold), area/box (see mask_stats_init;
// needs the dynamic shared memory). Tables ty [out_h], tx [out_w] are read only for an axis that changes size.
extern "C" __global__ void mask_frame(const float* __restrict__ src, int objects, int in_h, int in_w, int out_h,
                                      int out_w, const int* __restrict__ ty_i0, const int* __restrict__ ty_i1,
                                      const float* __restrict__ ty_w0, const float* __restrict__ ty_w1,
                                      const int* __restrict__ tx_i0, const int* __restrict__ tx_i1,
                                      const float* __restrict__ tx_w0, const float* __restrict__ tx_w1,
                                      int non_overlap, float* __restrict__ logits_out, float threshold,
                                      unsigned char* __restrict__ masks, unsigned long long* __restrict__ area,
                                      int* __restrict__ box) {
    extern __shared__ int s_stats[];  // [5, n_local]: count, x0, y0, x1, y1
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const bool inside = x < out_w && y < out_h;
    const int o_begin = non_overlap ? 0 : blockIdx.z;
    const int o_end = non_overlap ? objects : o_begin + 1;
    const int n_local = o_end - o_begin;
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
    const bool stats = area != 0;

    if (stats) {
        for (int k = tid; k < n_local; k += nthreads) {
            s_stats[k] = 0;
            s_stats[n_local + k] = INT_MAX_;
            s_stats[2 * n_local + k] = INT_MAX_;
            s_stats[3 * n_local + k] = -1;
            s_stats[4 * n_local + k] = -1;
        }
        __syncthreads();
    }

    // Taps of this pixel (threads outside the image use pixel (0, 0): valid loads, results discarded).
    const int xs = inside ? x : 0, ys = inside ? y : 0;
    const bool same_w = in_w == out_w, same_h = in_h == out_h;
    int xa = 0, xb = 0, ya = 0, yb = 0;
    float wx0 = 1.f, wx1 = 0.f, wy0 = 1.f, wy1 = 0.f;
    if (!same_w) { xa = tx_i0[xs]; xb = tx_i1[xs]; wx0 = tx_w0[xs]; wx1 = tx_w1[xs]; }
    if (!same_h) { ya = ty_i0[ys]; yb = ty_i1[ys]; wy0 = ty_w0[ys]; wy1 = ty_w1[ys]; }
    const long long plane_in = (long long)in_h * in_w;
    const long long plane_out = (long long)out_h * out_w, at = (long long)ys * out_w + xs;

    // Non-overlap: the first object with the maximal value keeps its logit (torch.argmax); a NaN anywhere
    // makes the max NaN, equal to no object, so every object is clamped (the twin: np.max propagates NaN).
    const bool constrain = non_overlap && objects > 1;
    int keep = -1;
    if (constrain) {
        float best = 0.f;
        bool nan = false;
        for (int o = 0; o < objects; ++o) {
            const float v = sample(src + o * plane_in, in_w, same_w, same_h, xs, xa, xb, wx0, wx1, ys, ya, yb,
                                   wy0, wy1);
            if (v != v) nan = true;
            else if (keep < 0 || v > best) { best = v; keep = o; }  // strict >: the first maximum wins
        }
        if (nan) keep = -1;
    }

    const int lane = threadIdx.x & 31;
    for (int o = o_begin; o < o_end; ++o) {
        float v = sample(src + o * plane_in, in_w, same_w, same_h, xs, xa, xb, wx0, wx1, ys, ya, yb, wy0, wy1);
        // np.minimum(v, -10) keeps a NaN: `v > -10 ? -10 : v` does too (fminf would not).
        if (constrain && o != keep) v = v > -10.0f ? -10.0f : v;
        if (inside && logits_out) logits_out[o * plane_out + at] = v;
        const bool m = inside && v > threshold;
        if (inside && masks) masks[o * plane_out + at] = m ? 1 : 0;
        if (stats) {
            // blockDim.x == 32: the warp is one row segment, y is uniform, so a warp adds one count and box.
            const unsigned ballot = __ballot_sync(FULL_MASK, m);
            if (ballot) {
                const int x0 = warp_min(m ? x : INT_MAX_);
                const int x1 = warp_max(m ? x : -1);
                if (lane == 0) {
                    const int k = o - o_begin;
                    atomicAdd(&s_stats[k], __popc(ballot));
                    atomicMin(&s_stats[n_local + k], x0);
                    atomicMin(&s_stats[2 * n_local + k], y);
                    atomicMax(&s_stats[3 * n_local + k], x1);
                    atomicMax(&s_stats[4 * n_local + k], y);
                }
            }
        }
    }

    if (stats) {
        __syncthreads();
        for (int k = tid; k < n_local; k += nthreads) {
            const int cnt = s_stats[k];
            if (cnt == 0) continue;
            const int o = o_begin + k;
            atomicAdd(&area[o], (unsigned long long)cnt);
            atomicMin(&box[4 * o + 0], s_stats[n_local + k]);
            atomicMin(&box[4 * o + 1], s_stats[2 * n_local + k]);
            atomicMax(&box[4 * o + 2], s_stats[3 * n_local + k]);
            atomicMax(&box[4 * o + 3], s_stats[4 * n_local + k]);
        }
    }
}
