// PIL's BICUBIC resize of an RGB uint8 frame, bit-exact: the video loader's `Image.resize((S, S))`.
// Twins: runtime/ops/resize.py::resize_pil_bicubic (PIL itself) and preprocess.py::preprocess_video_frame.
//
// Pillow (src/libImaging/Resample.c) resamples separably in fixed point: per output pixel a window
// [first, first + n) along the pass's axis with integer coefficients (double weights * 2^22, rounded away from
// 0), accumulated in int32 from 2^21 (the rounding offset) and clipped to uint8 by `>> 22`; the second pass
// reads the first pass's uint8 image. Which axis goes first, and which source rows a horizontal-first pass
// covers, follows Pillow's ImagingResampleInner; the host plans the passes and computes the coefficient tables
// exactly as Pillow does (runtime/gpu/tables.py), so this kernel is only Pillow's integer arithmetic.
//
// Launch: 2-D blocks over (x, y) of the pass's output; every thread computes the 3 channels of one pixel.

#define PRECISION_BITS 22  // Resample.c: 32 - 8 bits of result - 2 bits of overflow headroom

// Resample.c `clip8`: its lookup table maps v >> 22 in [-640, 640) to [0, 255], i.e. a clamp.
__device__ __forceinline__ unsigned char clip8(int v) {
    v >>= PRECISION_BITS;  // arithmetic shift (floor), as C does on the same int
    return (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One pass. src: uint8 RGB rows of src_w pixels. Output pixel (x, y) of [out_h, out_w]:
//   horizontal: taps src[y + row0][first + t], first/n = bounds[x], coefficients coeffs[x, :];
//   vertical:   taps src[first + t][x],        first/n = bounds[y], coefficients coeffs[y, :].
// bounds [out, 2] int32 (first, n), coeffs [out, ksize] int32. Writes dst_u8 [out_h, out_w, 3] uint8 and/or
// dst_f32 [3, out_h, out_w] float32 = lut[c][value] (lut [3, 256]: the video loader's (v / 255 - mean) / std,
// the twin's own table), whichever is not null.
extern "C" __global__ void pil_bicubic_pass(const unsigned char* __restrict__ src, int src_w, int row0,
                                            int vertical, int out_h, int out_w, const int* __restrict__ bounds,
                                            const int* __restrict__ coeffs, int ksize,
                                            unsigned char* __restrict__ dst_u8, float* __restrict__ dst_f32,
                                            const float* __restrict__ lut) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= out_w || y >= out_h) return;
    const int o = vertical ? y : x;
    const int first = bounds[2 * o], n = bounds[2 * o + 1];
    const int* k = coeffs + (long long)o * ksize;
    const unsigned char* p;
    long long step;
    if (vertical) {
        p = src + ((long long)first * src_w + x) * 3;
        step = (long long)src_w * 3;
    } else {
        p = src + ((long long)(y + row0) * src_w + first) * 3;
        step = 3;
    }
    int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
    for (int t = 0; t < n; ++t) {
        const int c = k[t];
        s0 += (int)p[0] * c;
        s1 += (int)p[1] * c;
        s2 += (int)p[2] * c;
        p += step;
    }
    const unsigned char v0 = clip8(s0), v1 = clip8(s1), v2 = clip8(s2);
    const long long at = (long long)y * out_w + x;
    if (dst_u8) {
        dst_u8[3 * at] = v0;
        dst_u8[3 * at + 1] = v1;
        dst_u8[3 * at + 2] = v2;
    }
    if (dst_f32) {
        const long long plane = (long long)out_h * out_w;
        dst_f32[at] = lut[v0];
        dst_f32[plane + at] = lut[256 + v1];
        dst_f32[2 * plane + at] = lut[512 + v2];
    }
}
