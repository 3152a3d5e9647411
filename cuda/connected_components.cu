// 8-connected component labelling with per-pixel component areas, and the area filters built on it.
// Twins: runtime/ops/components.py::component_areas, fill_holes, remove_sprinkles, fill_holes_in_mask_scores
// and postprocess_image_masks (the official sam2 `get_connected_components` + its callers).
//
// Pixels are classified (1 foreground, 0 background, -1 unlabelled) and components are labelled within each
// class at once: hole filling looks at background components and sprinkle removal at foreground ones, both of
// the *input* logits, so one labelling serves both (the official postprocess_masks quirk, see the twin).
//
// Lock-free union-find over a label array (label[i] = parent index, a root points to itself), the scheme of
// Playne & Hawick, "A new algorithm for parallel connected-component labelling on GPUs" (IEEE TPDS 2018):
//   1. init:   label[i] = i for labelled pixels, -1 otherwise;
//   2. merge:  each pixel unites with the backward neighbours (W, NW, N, NE) of its class that the decision tree
//              of Wu, Otoo & Suzuki (2009) keeps: an edge implied by the others is skipped, fewer atomics;
//   3. flatten + count: label[i] = root, count[root] += 1 (one atomic per run of equal roots in a warp);
//   4. areas / filter: area(i) = count[label[i]].
// Labels are global pixel indices of a whole [N, H, W] batch; a neighbour is only taken inside the same image.
// Every link points to a smaller index (label[i] <= i), so there are no cycles and find terminates.
//
// Launch: 1-D, blockDim.x a multiple of 32 (ccl_flatten_count uses warp collectives on full warps).

#define FULL_MASK 0xffffffffu

// Labels are read through volatile: other threads lower them concurrently and a stale cached value must not
// be reused inside the loops (a stale parent is still an ancestor, so it is only a slower walk, never wrong).
__device__ __forceinline__ int find_root(const int* label, int i) {
    const volatile int* l = label;
    int p = l[i];
    while (p != i) {
        i = p;
        p = l[i];
    }
    return i;
}

// Join the trees of a and b: link the larger root under the smaller with atomicMin. If the larger one stopped
// being a root meanwhile, atomicMin still lowers its parent (keeping label[i] <= i) and the old parent returned
// is joined in the next round, so nothing is disconnected.
__device__ void unite(int* label, int a, int b) {
    bool done;
    do {
        a = find_root(label, a);
        b = find_root(label, b);
        if (a < b) {
            const int old = atomicMin(&label[b], a);
            done = old == b;
            b = old;
        } else if (b < a) {
            const int old = atomicMin(&label[a], b);
            done = old == a;
            a = old;
        } else {
            done = true;
        }
    } while (!done);
}

// logits [total] float32 -> cls [total] int8 (1: v > thr, 0: v <= thr, -1: NaN, which neither twin mask
// contains), label [total] int32.
extern "C" __global__ void ccl_init_logits(const float* __restrict__ x, float thr, signed char* __restrict__ cls,
                                           int* __restrict__ label, int total) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const float v = x[i];
    const signed char c = v > thr ? 1 : (v <= thr ? 0 : -1);
    cls[i] = c;
    label[i] = c >= 0 ? i : -1;
}

// mask [total] uint8/bool -> cls (1 where set, -1 elsewhere: only the mask's components are labelled), label.
extern "C" __global__ void ccl_init_mask(const unsigned char* __restrict__ mask, signed char* __restrict__ cls,
                                         int* __restrict__ label, int total) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const signed char c = mask[i] ? 1 : -1;
    cls[i] = c;
    label[i] = c >= 0 ? i : -1;
}

// cls, label [N, h, w] (total = N * h * w): unite each labelled pixel with its backward neighbours of the same
// class. Wu et al.'s tree (a = NW, b = N, c = NE, d = W): b alone suffices (a, c touch b); else c, plus a or d
// (they do not touch c); else a (d touches a); else d.
extern "C" __global__ void ccl_merge(const signed char* __restrict__ cls, int* label, int h, int w, int total) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const signed char c = cls[i];
    if (c < 0) return;
    const int x = i % w;
    const int y = (i / w) % h;
    const bool up = y > 0;
    if (up && cls[i - w] == c) {
        unite(label, i, i - w);
        return;
    }
    const bool nw = up && x > 0 && cls[i - w - 1] == c;
    const bool ne = up && x + 1 < w && cls[i - w + 1] == c;
    const bool we = x > 0 && cls[i - 1] == c;
    if (ne) {
        unite(label, i, i - w + 1);
        if (nw) unite(label, i, i - w - 1);
        else if (we) unite(label, i, i - 1);
    } else if (nw) {
        unite(label, i, i - w - 1);
    } else if (we) {
        unite(label, i, i - 1);
    }
}

// label -> its root for every labelled pixel; count[root] += 1 (count [total] int32, zeroed by the host).
// Neighbouring pixels mostly share a root: lanes of a warp with the same root add once (__match_any_sync), so
// a 256-pixel run of one component costs 8 atomics instead of 256. No early return: the collectives need
// every lane of the warp (the grid covers whole warps; lanes past `total` take root -1 and add nothing).
extern "C" __global__ void ccl_flatten_count(const signed char* __restrict__ cls, int* label,
                                             int* __restrict__ count, int total) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    int root = -1;
    if (i < total && cls[i] >= 0) {
        root = find_root(label, i);
        label[i] = root;  // other threads may be walking through i: the root is still an ancestor
    }
    const unsigned peers = __match_any_sync(FULL_MASK, root);
    if (root >= 0 && (int)(threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&count[root], __popc(peers));
}

// component_areas: areas [total] int32 = area of the pixel's foreground component, 0 elsewhere.
extern "C" __global__ void ccl_areas(const signed char* __restrict__ cls, const int* __restrict__ label,
                                     const int* __restrict__ count, int* __restrict__ areas, int total) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    areas[i] = cls[i] == 1 ? count[label[i]] : 0;
}

// Hole filling and sprinkle removal on logits x [total] float32 -> out [total] float32 (out may alias x):
// background pixels (cls 0) in components of area <= max_hole get hole_value, foreground pixels (cls 1) in
// components of area <= max_sprinkle get sprinkle_value; a negative max disables that filter.
extern "C" __global__ void ccl_filter(const float* x, const signed char* __restrict__ cls,
                                      const int* __restrict__ label, const int* __restrict__ count, float* out,
                                      int total, double max_hole, float hole_value, double max_sprinkle,
                                      float sprinkle_value) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const signed char c = cls[i];
    float v = x[i];
    if (c >= 0) {
        const double area = (double)count[label[i]];
        if (c == 0 && area <= max_hole) v = hole_value;
        else if (c == 1 && area <= max_sprinkle) v = sprinkle_value;
    }
    out[i] = v;
}
