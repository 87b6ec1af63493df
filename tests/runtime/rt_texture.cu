/*
 * rt_texture.cu - CUDA arrays, texture objects and surface objects as an
 * unmodified nvcc-built program uses them: cudaMallocArray and
 * cudaMemcpy2DToArray, tex2D<float> with point and linear filtering, clamp
 * and wrap, normalized coordinates, normalized-float reads of 8-bit data,
 * surf2Dwrite/surf2Dread, cudaMemcpy2DFromArray, a 3D array round trip with
 * tex3D, and bad requests (copies past an array's end; on the shim, freed
 * handles too) that must fail cleanly.  Every fetch is checked against a reference computed
 * here the way the CUDA programming guide's texture fetching appendix says
 * (linear filtering weights in 9-bit fixed point, 8 fraction bits).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>

#include "rt_check.h"

#define W 8
#define H 5
#define NS 64           /* sample points per texture check */

__global__ void fetch2d(cudaTextureObject_t t, const float2 *at, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = tex2D<float>(t, at[i].x, at[i].y);
    }
}

__global__ void fetch2d_uchar4(cudaTextureObject_t t, const float2 *at, float4 *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = tex2D<float4>(t, at[i].x, at[i].y);
    }
}

__global__ void fetch1d_int(cudaTextureObject_t t, const float *at, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = tex1D<int>(t, at[i]);
    }
}

__global__ void fetch3d(cudaTextureObject_t t, float *out, int w, int h, int d)
{
    int x = threadIdx.x, y = threadIdx.y, z = blockIdx.x;
    if (x < w && y < h && z < d) {
        out[(z * h + y) * w + x] = tex3D<float>(t, x + 0.5f, y + 0.5f, z + 0.5f);
    }
}

__global__ void surf_write(cudaSurfaceObject_t s, int w, int h)
{
    int x = threadIdx.x, y = threadIdx.y;
    if (x < w && y < h) {
        surf2Dwrite((float)(100 * y + x), s, x * (int)sizeof(float), y);
    }
}

/* Reads each element, writes it doubled one column to the right (the last
 * column's write falls off the edge and is dropped: boundary mode zero). */
__global__ void surf_shift(cudaSurfaceObject_t src, cudaSurfaceObject_t dst, int w, int h)
{
    int x = threadIdx.x, y = threadIdx.y;
    if (x < w && y < h) {
        float v = surf2Dread<float>(src, x * (int)sizeof(float), y);
        surf2Dwrite(2.0f * v, dst, (x + 1) * (int)sizeof(float), y, cudaBoundaryModeZero);
    }
}

__global__ void fetch_linear(cudaTextureObject_t t, float *out, int n)
{
    int i = threadIdx.x;
    if (i < n) {
        out[i] = tex1Dfetch<float>(t, i * 3 - 2);
    }
}

/* Each voxel of a 3D surface gets its coordinates packed, then is read
 * back doubled into linear memory. */
__global__ void surf3d(cudaSurfaceObject_t s, unsigned *out, int w, int h, int d)
{
    int x = threadIdx.x, y = threadIdx.y, z = blockIdx.x;
    if (x < w && y < h && z < d) {
        surf3Dwrite((unsigned)(z << 16 | y << 8 | x), s, x * 4, y, z);
        out[(z * h + y) * w + x] = 2 * surf3Dread<unsigned>(s, x * 4, y, z);
    }
}

/* Layer l of a layered surface gets 1000 * l + x + 10 * y; then each lane
 * fetches its texel from the layered texture with tex2DLayered and with
 * tex2DLod (level 0: arrays have no mipmaps). */
__global__ void layered(cudaSurfaceObject_t s, int w, int h, int layers)
{
    int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x;
    if (x < w && y < h && l < layers) {
        surf2DLayeredwrite((float)(1000 * l + 10 * y + x), s, x * 4, y, l);
    }
}

__global__ void layered_fetch(cudaTextureObject_t t, float *out, int w, int h, int layers)
{
    int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x;
    if (x < w && y < h && l < layers) {
        out[(l * h + y) * w + x] = tex2DLayered<float>(t, x + 0.5f, y + 0.5f, l) +
                                   (l == 0 ? 0.0f : tex2DLod<float>(t, x + 0.5f, y + 0.5f, 3.0f)) -
                                   (l == 0 ? 0.0f : tex2DLayered<float>(t, x + 0.5f, y + 0.5f, 0));
    }
}

/* Half texels filtered as floats; a uchar4 surface incremented in place,
 * then read as short2 (two 16-bit halves of each element). */
__global__ void formats(cudaTextureObject_t th, cudaSurfaceObject_t s, float *o, short *q)
{
    int x = threadIdx.x;
    o[x] = tex2D<float>(th, 0.75f + x, 0.5f);
    uchar4 v = surf2Dread<uchar4>(s, x * 4, 0);
    v.x += 1;
    v.w += 2;
    surf2Dwrite(v, s, x * 4, 0);
    short2 h = surf2Dread<short2>(s, (x + 1) * 4, 0, cudaBoundaryModeClamp);
    q[2 * x] = h.x;
    q[2 * x + 1] = h.y;
}

__global__ void gather(cudaTextureObject_t t, cudaTextureObject_t t4, float4 *o, uchar4 *o4)
{
    int i = threadIdx.x;
    o[i] = tex2Dgather<float4>(t, 1.0f + i, 1.0f, 0);
    o4[i] = tex2Dgather<uchar4>(t4, 1.0f + i, 1.0f, 3);
}

/* tex2DLod at the levels of detail in @lod; tex2DGrad with gradients of
 * g texels along x (normalized coordinates over 8 texels). */
__global__ void mip_fetch(cudaTextureObject_t t, const float *lod, float *out, int n, float g)
{
    int i = threadIdx.x;
    if (i < n) {
        out[i] = tex2DLod<float>(t, 0.3f, 0.6f, lod[i]);
    } else if (i == n) {
        out[i] = tex2DGrad<float>(t, 0.3f, 0.6f, make_float2(g / 8.0f, 0.0f),
                                  make_float2(0.0f, g / 8.0f));
    }
}

/* Face f of cubemap l gets 10000 * l + 1000 * f + 10 * y + x; then lane i
 * fetches along direction dir[i] from cubemap @layer. */
__global__ void cube_write(cudaSurfaceObject_t s, int w, int cubes)
{
    int x = threadIdx.x, y = threadIdx.y, f = blockIdx.x % 6, l = blockIdx.x / 6;
    if (x < w && y < w && l < cubes) {
        surfCubemapLayeredwrite((float)(10000 * l + 1000 * f + 10 * y + x), s, x * 4, y,
                                6 * l + f);
    }
}

__global__ void cube_fetch(cudaTextureObject_t t, const float4 *dir, float *out, int n, int layer)
{
    int i = threadIdx.x;
    if (i < n) {
        out[i] = layer < 0 ? texCubemap<float>(t, dir[i].x, dir[i].y, dir[i].z)
                           : texCubemapLayered<float>(t, dir[i].x, dir[i].y, dir[i].z, layer);
    }
}

/* ---- the reference ------------------------------------------------------ */

/* The face and texel a cubemap direction reads with point sampling: the
 * programming guide's table of (face, m, s, t). */
static float ref_cube(float x, float y, float z, int w, int layer)
{
    float ax = fabsf(x), ay = fabsf(y), az = fabsf(z), m, s, t;
    int f;

    if (ax >= ay && ax >= az) {
        f = x >= 0 ? 0 : 1;
        m = ax;
        s = x >= 0 ? -z : z;
        t = -y;
    } else if (ay >= az) {
        f = y >= 0 ? 2 : 3;
        m = ay;
        s = x;
        t = y >= 0 ? z : -z;
    } else {
        f = z >= 0 ? 4 : 5;
        m = az;
        s = z >= 0 ? x : -x;
        t = -y;
    }
    int i = (int)floorf((s / m + 1.0f) * 0.5f * (float)w);
    int j = (int)floorf((t / m + 1.0f) * 0.5f * (float)w);
    i = i < 0 ? 0 : i >= w ? w - 1 : i;
    j = j < 0 ? 0 : j >= w ? w - 1 : j;
    return (float)(10000 * layer + 1000 * f + 10 * j + i);
}

/*
 * Freed and misused handles are checked only on the shim: NVIDIA's driver
 * leaves them undefined (tests/gpu runs this program natively too).  The
 * shim exports vgc_shim_version; cudart has loaded libcuda by now.
 */
static int on_shim(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    int yes = h && dlsym(h, "vgc_shim_version");

    if (h) {
        dlclose(h);
    }
    return yes;
}

static int wrap_clamp(int i, int n, int wrap)
{
    if (wrap) {
        i %= n;
        return i < 0 ? i + n : i;
    }
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

/* Coordinate u on an axis of n texels as the hardware takes it: normalized
 * coordinates are scaled by n; wrap keeps only the fraction first. */
static float ref_coord(float u, int n, int norm, int wrap)
{
    if (norm) {
        if (wrap) {
            u = u - floorf(u);
        }
        u *= (float)n;
    }
    return u;
}

static float ref_texel(const float *img, int x, int y, int wrap)
{
    return img[wrap_clamp(y, H, wrap) * W + wrap_clamp(x, W, wrap)];
}

static float ref_fetch(const float *img, float u, float v, int linear, int norm, int wrap)
{
    u = ref_coord(u, W, norm, wrap);
    v = ref_coord(v, H, norm, wrap);
    if (!linear) {
        return ref_texel(img, (int)floorf(u), (int)floorf(v), wrap);
    }
    float xb = u - 0.5f, yb = v - 0.5f;
    int i = (int)floorf(xb), j = (int)floorf(yb);
    /* alpha and beta in 9-bit fixed point with 8 bits of fraction */
    float a = roundf((xb - floorf(xb)) * 256.0f) / 256.0f;
    float b = roundf((yb - floorf(yb)) * 256.0f) / 256.0f;
    return (1 - a) * (1 - b) * ref_texel(img, i, j, wrap) + a * (1 - b) * ref_texel(img, i + 1, j, wrap) +
           (1 - a) * b * ref_texel(img, i, j + 1, wrap) + a * b * ref_texel(img, i + 1, j + 1, wrap);
}

/* Deprecated, but programs still call them: @n bytes from the start of
 * row @y on, continuing into the next rows. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static cudaError_t to_array(cudaArray_t a, size_t y, const void *src, size_t n)
{
    return cudaMemcpyToArray(a, 0, y, src, n, cudaMemcpyHostToDevice);
}

static cudaError_t from_array(void *dst, cudaArray_t a, size_t y, size_t n)
{
    return cudaMemcpyFromArray(dst, a, 0, y, n, cudaMemcpyDeviceToHost);
}
#pragma GCC diagnostic pop

static cudaTextureObject_t make_tex(cudaArray_t arr, int linear, int norm, int wrap,
                                    enum cudaTextureReadMode mode)
{
    struct cudaResourceDesc rd;
    struct cudaTextureDesc td;
    cudaTextureObject_t t = 0;

    memset(&rd, 0, sizeof(rd));
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = arr;
    memset(&td, 0, sizeof(td));
    td.addressMode[0] = td.addressMode[1] = td.addressMode[2] =
        wrap ? cudaAddressModeWrap : cudaAddressModeClamp;
    td.filterMode = linear ? cudaFilterModeLinear : cudaFilterModePoint;
    td.readMode = mode;
    td.normalizedCoords = norm;
    if (cudaCreateTextureObject(&t, &rd, &td, NULL) != cudaSuccess) {
        return 0;
    }
    return t;
}

static void check_2d(cudaArray_t arr, const float *img, int linear, int norm, int wrap,
                     const char *what)
{
    float2 at[NS], *dat = NULL;
    float got[NS], *dout = NULL;
    int bad = -1;
    cudaTextureObject_t t = make_tex(arr, linear, norm, wrap, cudaReadModeElementType);

    RT_OK(t != 0, "cudaCreateTextureObject");
    /* Points inside, on texel edges and centres, and outside on every side. */
    for (int i = 0; i < NS; i++) {
        float x = -3.0f + (float)i * 0.37f, y = -2.0f + (float)((i * 7) % NS) * 0.19f;
        if (norm) {
            x /= (float)W;
            y /= (float)H;
        }
        at[i] = make_float2(x, y);
    }
    cudaMalloc(&dat, sizeof(at));
    cudaMalloc(&dout, sizeof(got));
    cudaMemcpy(dat, at, sizeof(at), cudaMemcpyHostToDevice);
    fetch2d<<<1, NS>>>(t, dat, dout, NS);
    RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "fetch kernel ran");
    RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess, "fetch back");
    for (int i = 0; i < NS && bad < 0; i++) {
        float want = ref_fetch(img, at[i].x, at[i].y, linear, norm, wrap);
        if (fabsf(got[i] - want) > 1e-4f * (1.0f + fabsf(want))) {
            bad = i;
            printf("# %s: at (%g, %g) got %.7g want %.7g\n", what, at[i].x, at[i].y, got[i], want);
        }
    }
    RT_EQ(bad, -1, what);
    cudaDestroyTextureObject(t);
    cudaFree(dat);
    cudaFree(dout);
}

int main(void)
{
    float img[H * W], back[H * W];
    cudaArray_t arr = NULL;
    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();

    rt_start();
    for (int i = 0; i < H * W; i++) {
        img[i] = (float)((i * 37) % 23) - 4.5f;
    }

    /* ---- a 2D float array and texture fetches --------------------------- */
    RT_EQ(cudaMallocArray(&arr, &fd, W, H), cudaSuccess, "cudaMallocArray float 8x5");
    {
        cudaChannelFormatDesc q;
        struct cudaExtent e;
        unsigned int flags = 99;
        RT_EQ(cudaArrayGetInfo(&q, &e, &flags, arr), cudaSuccess, "cudaArrayGetInfo");
        RT_OK(q.x == 32 && q.y == 0 && q.f == cudaChannelFormatKindFloat &&
              e.width == W && e.height == H && e.depth == 0 && flags == 0,
              "cudaArrayGetInfo: float, 8x5x0, no flags");
    }
    /* The source has a pitch wider than a row. */
    {
        float pitched[H][W + 3];
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                pitched[y][x] = img[y * W + x];
            }
        }
        RT_EQ(cudaMemcpy2DToArray(arr, 0, 0, pitched, sizeof(pitched[0]), W * sizeof(float), H,
                                  cudaMemcpyHostToDevice),
              cudaSuccess, "cudaMemcpy2DToArray (pitched source)");
    }
    memset(back, 0, sizeof(back));
    RT_EQ(cudaMemcpy2DFromArray(back, W * sizeof(float), arr, 0, 0, W * sizeof(float), H,
                                cudaMemcpyDeviceToHost),
          cudaSuccess, "cudaMemcpy2DFromArray");
    RT_EQ(memcmp(back, img, sizeof(img)), 0, "array round trip");

    /* A sub-rectangle: columns 2..4 of rows 1..3 */
    {
        float sub[3][3];
        RT_EQ(cudaMemcpy2DFromArray(sub, sizeof(sub[0]), arr, 2 * sizeof(float), 1,
                                    sizeof(sub[0]), 3, cudaMemcpyDeviceToHost),
              cudaSuccess, "cudaMemcpy2DFromArray sub-rectangle");
        RT_OK(sub[0][0] == img[1 * W + 2] && sub[2][2] == img[3 * W + 4], "sub-rectangle values");
    }

    /* Array to device memory and back into a second array. */
    {
        float *lin = NULL;
        size_t pitch = 0;
        cudaArray_t arr2 = NULL;
        RT_EQ(cudaMallocPitch(&lin, &pitch, W * sizeof(float), H), cudaSuccess, "cudaMallocPitch");
        RT_EQ(cudaMemcpy2DFromArray(lin, pitch, arr, 0, 0, W * sizeof(float), H,
                                    cudaMemcpyDeviceToDevice),
              cudaSuccess, "array to pitched device memory");
        RT_EQ(cudaMallocArray(&arr2, &fd, W, H), cudaSuccess, "second array");
        RT_EQ(cudaMemcpy2DToArray(arr2, 0, 0, lin, pitch, W * sizeof(float), H,
                                  cudaMemcpyDeviceToDevice),
              cudaSuccess, "pitched device memory to array");
        RT_EQ(cudaMemcpy2DArrayToArray(arr2, 0, 0, arr, 0, 0, W * sizeof(float), H,
                                       cudaMemcpyDeviceToDevice),
              cudaSuccess, "array to array");
        memset(back, 0, sizeof(back));
        cudaMemcpy2DFromArray(back, W * sizeof(float), arr2, 0, 0, W * sizeof(float), H,
                              cudaMemcpyDeviceToHost);
        RT_EQ(memcmp(back, img, sizeof(img)), 0, "through device memory and a second array");
        cudaFreeArray(arr2);
        cudaFree(lin);
    }

    check_2d(arr, img, 0, 0, 0, "point, clamp, unnormalized coordinates");
    check_2d(arr, img, 0, 1, 1, "point, wrap, normalized coordinates");
    check_2d(arr, img, 1, 0, 0, "linear, clamp, unnormalized coordinates");
    check_2d(arr, img, 1, 1, 1, "linear, wrap, normalized coordinates");
    check_2d(arr, img, 1, 1, 0, "linear, clamp, normalized coordinates");

    /* ---- uchar4 read as normalized float --------------------------------- */
    {
        cudaChannelFormatDesc f4 = cudaCreateChannelDesc<uchar4>();
        cudaArray_t a4 = NULL;
        uchar4 px[H * W];
        float2 at[4] = { { 0.5f, 0.5f }, { 3.5f, 2.5f }, { 1.0f, 1.0f }, { 7.75f, 4.5f } };
        float2 *dat = NULL;
        float4 got[4], *dout = NULL;
        for (int i = 0; i < H * W; i++) {
            px[i] = make_uchar4(i, 255 - i, 3 * i, 128);
        }
        RT_EQ(cudaMallocArray(&a4, &f4, W, H), cudaSuccess, "cudaMallocArray uchar4");
        RT_EQ(cudaMemcpy2DToArray(a4, 0, 0, px, W * sizeof(uchar4), W * sizeof(uchar4), H,
                                  cudaMemcpyHostToDevice),
              cudaSuccess, "uchar4 data");
        cudaTextureObject_t t = make_tex(a4, 0, 0, 0, cudaReadModeNormalizedFloat);
        RT_OK(t != 0, "uchar4 texture, normalized float reads");
        cudaMalloc(&dat, sizeof(at));
        cudaMalloc(&dout, sizeof(got));
        cudaMemcpy(dat, at, sizeof(at), cudaMemcpyHostToDevice);
        fetch2d_uchar4<<<1, 4>>>(t, dat, dout, 4);
        RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess,
              "uchar4 fetch");
        int ok = 1;
        for (int i = 0; i < 4; i++) {
            uchar4 p = px[(int)floorf(at[i].y) * W + (int)floorf(at[i].x)];
            ok &= got[i].x == p.x / 255.0f && got[i].y == p.y / 255.0f &&
                  got[i].z == p.z / 255.0f && got[i].w == p.w / 255.0f;
        }
        RT_OK(ok, "uchar4 texels read as x / 255");
        cudaDestroyTextureObject(t);
        cudaFreeArray(a4);
        cudaFree(dat);
        cudaFree(dout);
    }

    /* ---- a 1D int array, point sampling, element reads -------------------- */
    {
        cudaChannelFormatDesc fi = cudaCreateChannelDesc<int>();
        cudaArray_t a1 = NULL;
        int v[16], got[6], *dout = NULL;
        float at[6] = { -5.0f, 0.0f, 0.99f, 7.5f, 15.9f, 400.0f };
        float *dat = NULL;
        for (int i = 0; i < 16; i++) {
            v[i] = -1000 * i;
        }
        RT_EQ(cudaMallocArray(&a1, &fi, 16, 0), cudaSuccess, "cudaMallocArray 1D int");
        RT_EQ(cudaMemcpy2DToArray(a1, 0, 0, v, sizeof(v), sizeof(v), 1, cudaMemcpyHostToDevice),
              cudaSuccess, "1D data");
        cudaTextureObject_t t = make_tex(a1, 0, 0, 0, cudaReadModeElementType);
        cudaMalloc(&dat, sizeof(at));
        cudaMalloc(&dout, sizeof(got));
        cudaMemcpy(dat, at, sizeof(at), cudaMemcpyHostToDevice);
        fetch1d_int<<<1, 6>>>(t, dat, dout, 6);
        RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess,
              "1D fetch");
        RT_OK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == -7000 &&
              got[4] == -15000 && got[5] == -15000, "tex1D<int> clamps");
        cudaDestroyTextureObject(t);
        cudaFreeArray(a1);
        cudaFree(dat);
        cudaFree(dout);
    }

    /* ---- surfaces ---------------------------------------------------------- */
    {
        cudaArray_t sa = NULL, sb = NULL;
        cudaSurfaceObject_t s1 = 0, s2 = 0;
        struct cudaResourceDesc rd;
        float out[H][W];
        int ok = 1;

        RT_EQ(cudaMallocArray(&sa, &fd, W, H, cudaArraySurfaceLoadStore), cudaSuccess,
              "surface array a");
        RT_EQ(cudaMallocArray(&sb, &fd, W, H, cudaArraySurfaceLoadStore), cudaSuccess,
              "surface array b");
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = sa;
        RT_EQ(cudaCreateSurfaceObject(&s1, &rd), cudaSuccess, "cudaCreateSurfaceObject a");
        rd.res.array.array = sb;
        RT_EQ(cudaCreateSurfaceObject(&s2, &rd), cudaSuccess, "cudaCreateSurfaceObject b");
        {
            float zero[H * W];
            memset(zero, 0, sizeof(zero));
            cudaMemcpy2DToArray(sb, 0, 0, zero, W * sizeof(float), W * sizeof(float), H,
                                cudaMemcpyHostToDevice);
        }
        surf_write<<<1, dim3(W, H)>>>(s1, W, H);
        surf_shift<<<1, dim3(W, H)>>>(s1, s2, W, H);
        RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "surface kernels ran");
        RT_EQ(cudaMemcpy2DFromArray(out, sizeof(out[0]), sb, 0, 0, sizeof(out[0]), H,
                                    cudaMemcpyDeviceToHost),
              cudaSuccess, "surface result back");
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                ok &= out[y][x] == (x == 0 ? 0.0f : 2.0f * (float)(100 * y + x - 1));
            }
        }
        RT_OK(ok, "surf2Dwrite, surf2Dread, a boundary-zero store dropped");
        {
            struct cudaResourceDesc q;
            RT_EQ(cudaGetSurfaceObjectResourceDesc(&q, s1), cudaSuccess,
                  "cudaGetSurfaceObjectResourceDesc");
            RT_OK(q.resType == cudaResourceTypeArray && q.res.array.array == sa,
                  "the surface names its array");
        }
        cudaDestroySurfaceObject(s1);
        cudaDestroySurfaceObject(s2);
        cudaFreeArray(sa);
        cudaFreeArray(sb);
    }

    /* ---- a 3D array ------------------------------------------------------- */
    {
        const int w3 = 6, h3 = 4, d3 = 3;
        float vol[3][4][6], vback[3][4][6], *dout = NULL, got[3][4][6];
        cudaArray_t a3 = NULL;
        struct cudaExtent ext = make_cudaExtent(w3, h3, d3);
        struct cudaMemcpy3DParms p;

        for (int z = 0; z < d3; z++) {
            for (int y = 0; y < h3; y++) {
                for (int x = 0; x < w3; x++) {
                    vol[z][y][x] = (float)(z * 1000 + y * 10 + x);
                }
            }
        }
        RT_EQ(cudaMalloc3DArray(&a3, &fd, ext), cudaSuccess, "cudaMalloc3DArray 6x4x3");
        memset(&p, 0, sizeof(p));
        p.srcPtr = make_cudaPitchedPtr(vol, w3 * sizeof(float), w3, h3);
        p.dstArray = a3;
        p.extent = ext;
        p.kind = cudaMemcpyHostToDevice;
        RT_EQ(cudaMemcpy3D(&p), cudaSuccess, "cudaMemcpy3D host to 3D array");
        memset(&p, 0, sizeof(p));
        memset(vback, 0, sizeof(vback));
        p.srcArray = a3;
        p.dstPtr = make_cudaPitchedPtr(vback, w3 * sizeof(float), w3, h3);
        p.extent = ext;
        p.kind = cudaMemcpyDeviceToHost;
        RT_EQ(cudaMemcpy3D(&p), cudaSuccess, "cudaMemcpy3D 3D array to host");
        RT_EQ(memcmp(vol, vback, sizeof(vol)), 0, "3D array round trip");

        cudaTextureObject_t t = make_tex(a3, 0, 0, 0, cudaReadModeElementType);
        RT_OK(t != 0, "3D texture");
        cudaMalloc(&dout, sizeof(got));
        fetch3d<<<d3, dim3(w3, h3)>>>(t, dout, w3, h3, d3);
        RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess,
              "tex3D fetch");
        RT_EQ(memcmp(got, vol, sizeof(vol)), 0, "tex3D reads every texel");

        /* One slice, z = 1, out of the middle into a 2D host buffer. */
        memset(&p, 0, sizeof(p));
        float slice[4][6];
        p.srcArray = a3;
        p.srcPos = make_cudaPos(0, 0, 1);
        p.dstPtr = make_cudaPitchedPtr(slice, w3 * sizeof(float), w3, h3);
        p.extent = make_cudaExtent(w3, h3, 1);
        p.kind = cudaMemcpyDeviceToHost;
        RT_EQ(cudaMemcpy3D(&p), cudaSuccess, "cudaMemcpy3D one slice");
        RT_EQ(memcmp(slice, vol[1], sizeof(slice)), 0, "slice z=1");

        /* Past the end in depth: refused. */
        p.srcPos = make_cudaPos(0, 0, 2);
        p.extent = make_cudaExtent(w3, h3, 2);
        RT_OK(cudaMemcpy3D(&p) != cudaSuccess, "cudaMemcpy3D past the last slice fails");
        cudaGetLastError();
        cudaDestroyTextureObject(t);
        cudaFreeArray(a3);
        cudaFree(dout);
    }

    /* ---- linear memory as a 1D texture, tex1Dfetch --------------------------- */
    {
        float lin[10], got[6], *dlin = NULL, *dout = NULL;
        struct cudaResourceDesc rd;
        struct cudaTextureDesc td;
        cudaTextureObject_t t = 0;
        for (int i = 0; i < 10; i++) {
            lin[i] = 1.5f * (float)i;
        }
        cudaMalloc(&dlin, sizeof(lin));
        cudaMalloc(&dout, sizeof(got));
        cudaMemcpy(dlin, lin, sizeof(lin), cudaMemcpyHostToDevice);
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeLinear;
        rd.res.linear.devPtr = dlin;
        rd.res.linear.desc = cudaCreateChannelDesc<float>();
        rd.res.linear.sizeInBytes = sizeof(lin);
        memset(&td, 0, sizeof(td));
        td.readMode = cudaReadModeElementType;
        RT_EQ(cudaCreateTextureObject(&t, &rd, &td, NULL), cudaSuccess,
              "texture object over linear memory");
        fetch_linear<<<1, 6>>>(t, dout, 6);
        RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess,
              "tex1Dfetch kernel");
        /* indices -2, 1, 4, 7, 10, 13: outside reads clamp to the ends */
        RT_OK(got[0] == lin[0] && got[1] == lin[1] && got[2] == lin[4] && got[3] == lin[7] &&
              got[4] == lin[9] && got[5] == lin[9], "tex1Dfetch<float> by element index");
        {
            struct cudaResourceDesc q;
            struct cudaTextureDesc qt;
            RT_EQ(cudaGetTextureObjectResourceDesc(&q, t), cudaSuccess,
                  "cudaGetTextureObjectResourceDesc");
            RT_OK(q.resType == cudaResourceTypeLinear && q.res.linear.devPtr == dlin &&
                  q.res.linear.sizeInBytes == sizeof(lin), "it describes the linear memory");
            RT_EQ(cudaGetTextureObjectTextureDesc(&qt, t), cudaSuccess,
                  "cudaGetTextureObjectTextureDesc");
        }
        cudaDestroyTextureObject(t);
        if (on_shim()) {
            RT_OK(cudaDestroyTextureObject(t) != cudaSuccess, "destroying it twice fails");
            cudaGetLastError();
        }
        rd.res.linear.sizeInBytes = sizeof(lin) + 4096;
        RT_OK(cudaCreateTextureObject(&t, &rd, &td, NULL) != cudaSuccess,
              "linear memory past the allocation is refused");
        cudaGetLastError();
        cudaFree(dlin);
        cudaFree(dout);
    }

    /* ---- a 3D surface, and asynchronous array copies ------------------------ */
    {
        const int w3 = 5, h3 = 3, d3 = 2;
        cudaArray_t a3 = NULL;
        cudaChannelFormatDesc fu = cudaCreateChannelDesc<unsigned>();
        cudaSurfaceObject_t s = 0;
        struct cudaResourceDesc rd;
        struct cudaMemcpy3DParms p;
        unsigned *dout = NULL, got[2][3][5], back[2][3][5];
        cudaStream_t st;
        int ok = 1;

        cudaStreamCreate(&st);
        RT_EQ(cudaMalloc3DArray(&a3, &fu, make_cudaExtent(w3, h3, d3), cudaArraySurfaceLoadStore),
              cudaSuccess, "3D surface array");
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = a3;
        RT_EQ(cudaCreateSurfaceObject(&s, &rd), cudaSuccess, "3D surface object");
        cudaMalloc(&dout, sizeof(got));
        surf3d<<<d3, dim3(w3, h3), 0, st>>>(s, dout, w3, h3, d3);
        memset(&p, 0, sizeof(p));
        p.srcArray = a3;
        p.dstPtr = make_cudaPitchedPtr(back, w3 * sizeof(unsigned), w3, h3);
        p.extent = make_cudaExtent(w3, h3, d3);
        p.kind = cudaMemcpyDeviceToHost;
        RT_EQ(cudaMemcpy3DAsync(&p, st), cudaSuccess, "cudaMemcpy3DAsync from the array");
        RT_EQ(cudaMemcpyAsync(got, dout, sizeof(got), cudaMemcpyDeviceToHost, st), cudaSuccess,
              "surface read-back");
        RT_EQ(cudaStreamSynchronize(st), cudaSuccess, "stream done");
        for (int z = 0; z < d3; z++) {
            for (int y = 0; y < h3; y++) {
                for (int x = 0; x < w3; x++) {
                    unsigned v = (unsigned)(z << 16 | y << 8 | x);
                    ok &= back[z][y][x] == v && got[z][y][x] == 2 * v;
                }
            }
        }
        RT_OK(ok, "surf3Dwrite, surf3Dread, the array holds what was written");
        RT_EQ(cudaMemcpy2DToArrayAsync(a3, 0, 0, back, w3 * sizeof(unsigned),
                                       w3 * sizeof(unsigned), h3, cudaMemcpyHostToDevice, st),
              cudaSuccess, "cudaMemcpy2DToArrayAsync");
        RT_EQ(cudaStreamSynchronize(st), cudaSuccess, "stream done again");
        cudaDestroySurfaceObject(s);
        cudaFreeArray(a3);
        cudaFree(dout);
        cudaStreamDestroy(st);
    }

    /* ---- a layered array ----------------------------------------------------- */
    {
        const int wl = 4, hl = 3, nl = 3;
        cudaArray_t al = NULL;
        cudaSurfaceObject_t s = 0;
        cudaTextureObject_t t = 0;
        struct cudaResourceDesc rd;
        float got[3][3][4], *dout = NULL;
        struct cudaMemcpy3DParms p;
        float back[3][3][4];
        int ok = 1;

        RT_EQ(cudaMalloc3DArray(&al, &fd, make_cudaExtent(wl, hl, nl),
                                cudaArrayLayered | cudaArraySurfaceLoadStore),
              cudaSuccess, "cudaMalloc3DArray, 3 layers of 4x3");
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = al;
        RT_EQ(cudaCreateSurfaceObject(&s, &rd), cudaSuccess, "layered surface");
        t = make_tex(al, 0, 0, 0, cudaReadModeElementType);
        RT_OK(t != 0, "layered texture");
        cudaMalloc(&dout, sizeof(got));
        layered<<<nl, dim3(wl, hl)>>>(s, wl, hl, nl);
        layered_fetch<<<nl, dim3(wl, hl)>>>(t, dout, wl, hl, nl);
        RT_EQ(cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess,
              "layered kernels");
        memset(&p, 0, sizeof(p));
        p.srcArray = al;
        p.dstPtr = make_cudaPitchedPtr(back, wl * sizeof(float), wl, hl);
        p.extent = make_cudaExtent(wl, hl, nl);
        p.kind = cudaMemcpyDeviceToHost;
        RT_EQ(cudaMemcpy3D(&p), cudaSuccess, "cudaMemcpy3D of every layer");
        for (int l = 0; l < nl; l++) {
            for (int y = 0; y < hl; y++) {
                for (int x = 0; x < wl; x++) {
                    float v = (float)(1000 * l + 10 * y + x);
                    ok &= back[l][y][x] == v && got[l][y][x] == v;
                }
            }
        }
        RT_OK(ok, "surf2DLayeredwrite, tex2DLayered, tex2DLod at level 0");
        cudaDestroyTextureObject(t);
        cudaDestroySurfaceObject(s);
        cudaFreeArray(al);
        cudaFree(dout);
    }

    /* ---- half and uchar4 formats -------------------------------------------- */
    {
        cudaChannelFormatDesc fh = cudaCreateChannelDescHalf(), f4 = cudaCreateChannelDesc<uchar4>();
        cudaArray_t ah = NULL, au = NULL;
        __half hv[4];
        uchar4 uv[4], ub[4];
        float ho[4], *dho = NULL;
        short qo[8], *dqo = NULL;
        struct cudaResourceDesc rd;
        cudaSurfaceObject_t s = 0;
        int ok = 1;

        for (int i = 0; i < 4; i++) {
            hv[i] = __float2half(0.5f + (float)i * 1.25f);      /* exact in half */
            uv[i] = make_uchar4(10 * i, 255, 0, 100 + i);
        }
        RT_EQ(cudaMallocArray(&ah, &fh, 4, 1), cudaSuccess, "half array");
        RT_EQ(cudaMallocArray(&au, &f4, 4, 1, cudaArraySurfaceLoadStore), cudaSuccess,
              "uchar4 surface array");
        cudaMemcpy2DToArray(ah, 0, 0, hv, sizeof(hv), sizeof(hv), 1, cudaMemcpyHostToDevice);
        cudaMemcpy2DToArray(au, 0, 0, uv, sizeof(uv), sizeof(uv), 1, cudaMemcpyHostToDevice);
        cudaTextureObject_t th = make_tex(ah, 1, 0, 0, cudaReadModeElementType);
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = au;
        RT_EQ(cudaCreateSurfaceObject(&s, &rd), cudaSuccess, "uchar4 surface");
        cudaMalloc(&dho, sizeof(ho));
        cudaMalloc(&dqo, sizeof(qo));
        formats<<<1, 4>>>(th, s, dho, dqo);
        RT_EQ(cudaMemcpy(ho, dho, sizeof(ho), cudaMemcpyDeviceToHost), cudaSuccess,
              "formats kernel");
        cudaMemcpy(qo, dqo, sizeof(qo), cudaMemcpyDeviceToHost);
        cudaMemcpy2DFromArray(ub, sizeof(ub), au, 0, 0, sizeof(ub), 1, cudaMemcpyDeviceToHost);
        /* x = 0.75 + i: a quarter of the way from texel i to i + 1 (the
         * last one clamps), 64/256 exactly in 9-bit weights */
        for (int i = 0; i < 4; i++) {
            float a = __half2float(hv[i]), b = __half2float(hv[i < 3 ? i + 1 : 3]);
            ok &= ho[i] == 0.75f * a + 0.25f * b;
        }
        RT_OK(ok, "half texels, linear filtering");
        ok = 1;
        for (int i = 0; i < 4; i++) {
            ok &= ub[i].x == uv[i].x + 1 && ub[i].y == 255 && ub[i].z == 0 &&
                  ub[i].w == uv[i].w + 2;
        }
        RT_OK(ok, "uchar4 surface read-modify-write");
        /* each lane read its right neighbour (element 3 for the last, clamped),
         * before or after that lane's own write: either value is fine */
        ok = 1;
        for (int i = 0; i < 4; i++) {
            int n = i < 3 ? i + 1 : 3;
            short lo0 = (short)(uv[n].x | uv[n].y << 8), lo1 = (short)((uv[n].x + 1) | uv[n].y << 8);
            ok &= qo[2 * i] == lo0 || qo[2 * i] == lo1;
        }
        RT_OK(ok, "short2 reads of the same bytes, clamped at the end");
        cudaDestroyTextureObject(th);
        cudaDestroySurfaceObject(s);
        cudaFreeArray(ah);
        cudaFreeArray(au);
        cudaFree(dho);
        cudaFree(dqo);
    }

    /* ---- gather ---------------------------------------------------------------- */
    {
        cudaArray_t ag = NULL, ag4 = NULL;
        cudaChannelFormatDesc f4 = cudaCreateChannelDesc<uchar4>();
        float4 go[3], *dgo = NULL;
        uchar4 px[2][4], g4[3], *dg4 = NULL;
        int ok = 1;

        RT_EQ(cudaMallocArray(&ag, &fd, W, H, cudaArrayTextureGather), cudaSuccess,
              "array for gather");
        RT_EQ(cudaMallocArray(&ag4, &f4, 4, 2, cudaArrayTextureGather), cudaSuccess,
              "uchar4 array for gather");
        cudaMemcpy2DToArray(ag, 0, 0, img, W * sizeof(float), W * sizeof(float), H,
                            cudaMemcpyHostToDevice);
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 4; x++) {
                px[y][x] = make_uchar4(0, 0, 0, (unsigned char)(16 * y + x));
            }
        }
        cudaMemcpy2DToArray(ag4, 0, 0, px, sizeof(px[0]), sizeof(px[0]), 2,
                            cudaMemcpyHostToDevice);
        cudaTextureObject_t t = make_tex(ag, 0, 0, 0, cudaReadModeElementType);
        cudaTextureObject_t t4 = make_tex(ag4, 0, 0, 0, cudaReadModeElementType);
        cudaMalloc(&dgo, sizeof(go));
        cudaMalloc(&dg4, sizeof(g4));
        gather<<<1, 3>>>(t, t4, dgo, dg4);
        RT_EQ(cudaMemcpy(go, dgo, sizeof(go), cudaMemcpyDeviceToHost), cudaSuccess,
              "tex2Dgather kernel");
        cudaMemcpy(g4, dg4, sizeof(g4), cudaMemcpyDeviceToHost);
        /* at (1 + i, 1): the footprint is texels i..i+1 of rows 0..1 */
        for (int i = 0; i < 3; i++) {
            ok &= go[i].x == img[W + i] && go[i].y == img[W + i + 1] && go[i].z == img[i + 1] &&
                  go[i].w == img[i];
            ok &= g4[i].x == px[1][i].w && g4[i].y == px[1][i + 1].w && g4[i].z == px[0][i + 1].w &&
                  g4[i].w == px[0][i].w;
        }
        RT_OK(ok, "tex2Dgather: the bilinear footprint counter-clockwise from the lower left");
        cudaDestroyTextureObject(t);
        cudaDestroyTextureObject(t4);
        cudaFreeArray(ag);
        cudaFreeArray(ag4);
        cudaFree(dgo);
        cudaFree(dg4);
    }

    /* ---- the deprecated whole-row copies ----------------------------------- */
    {
        cudaArray_t a2 = NULL;
        float rows[2 * W], rb[2 * W];

        for (int i = 0; i < 2 * W; i++) {
            rows[i] = (float)i * 0.5f;
        }
        RT_EQ(cudaMallocArray(&a2, &fd, W, H), cudaSuccess, "array for cudaMemcpyToArray");
        RT_EQ(to_array(a2, 1, rows, sizeof(rows)), cudaSuccess,
              "cudaMemcpyToArray: two rows from row 1");
        memset(rb, 0, sizeof(rb));
        RT_EQ(cudaMemcpy2DFromArray(rb, W * sizeof(float), a2, 0, 1, W * sizeof(float), 2,
                                    cudaMemcpyDeviceToHost),
              cudaSuccess, "read them back");
        RT_EQ(memcmp(rb, rows, sizeof(rows)), 0, "they landed in rows 1 and 2");
        memset(rb, 0, sizeof(rb));
        RT_EQ(from_array(rb, a2, 1, sizeof(rows)), cudaSuccess, "cudaMemcpyFromArray");
        RT_EQ(memcmp(rb, rows, sizeof(rows)), 0, "cudaMemcpyFromArray reads them");
        cudaFreeArray(a2);
    }

    /* ---- a captured graph: copy into an array, fetch, copy back ------------- */
    {
        cudaArray_t ga = NULL;
        cudaStream_t st;
        cudaGraph_t g;
        cudaGraphExec_t ge;
        float src[H * W], gout[NS], want[NS];
        float2 at[NS], *dat = NULL;
        float *dout = NULL;
        int ok = 1;

        cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
        RT_EQ(cudaMallocArray(&ga, &fd, W, H), cudaSuccess, "array for the graph");
        cudaTextureObject_t t = make_tex(ga, 0, 0, 0, cudaReadModeElementType);
        for (int i = 0; i < NS; i++) {
            at[i] = make_float2(0.5f + (float)(i % W), 0.5f + (float)(i / W % H));
        }
        cudaMalloc(&dat, sizeof(at));
        cudaMalloc(&dout, sizeof(gout));
        cudaMemcpy(dat, at, sizeof(at), cudaMemcpyHostToDevice);
        RT_EQ(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal), cudaSuccess,
              "begin capture");
        cudaMemcpy2DToArrayAsync(ga, 0, 0, src, W * sizeof(float), W * sizeof(float), H,
                                 cudaMemcpyHostToDevice, st);
        fetch2d<<<1, NS, 0, st>>>(t, dat, dout, NS);
        cudaMemcpyAsync(gout, dout, sizeof(gout), cudaMemcpyDeviceToHost, st);
        RT_EQ(cudaStreamEndCapture(st, &g), cudaSuccess, "end capture");
        RT_EQ(cudaGraphInstantiate(&ge, g, 0), cudaSuccess, "instantiate");
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < H * W; i++) {
                src[i] = (float)(round * 100 + i);
            }
            RT_EQ(cudaGraphLaunch(ge, st), cudaSuccess, "launch the graph");
            cudaStreamSynchronize(st);
            for (int i = 0; i < NS; i++) {
                want[i] = src[(i / W % H) * W + i % W];
                ok &= gout[i] == want[i];
            }
        }
        RT_OK(ok, "each replay copies what the host buffer holds then into the array");
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
        cudaDestroyTextureObject(t);
        cudaFreeArray(ga);
        cudaFree(dat);
        cudaFree(dout);
        cudaStreamDestroy(st);
    }

    /* ---- a mipmapped array ----------------------------------------------------- */
    {
        cudaMipmappedArray_t mm = NULL;
        const int nlev = 4;
        const float lods[] = { 0.0f, 1.0f, 2.0f, 3.0f, 0.4f, 1.6f, 7.0f, -2.0f, 1.25f };
        const int nl = (int)(sizeof(lods) / sizeof(lods[0]));
        float got[16], *dlod = NULL, *dout = NULL;
        struct cudaResourceDesc rd;
        struct cudaTextureDesc td;
        cudaTextureObject_t t = 0;
        int ok = 1;

        RT_EQ(cudaMallocMipmappedArray(&mm, &fd, make_cudaExtent(8, 8, 0), nlev), cudaSuccess,
              "cudaMallocMipmappedArray 8x8, 4 levels");
        for (int l = 0; l < nlev; l++) {
            cudaArray_t la = NULL;
            float v[64];
            int side = 8 >> l;
            struct cudaChannelFormatDesc q;
            struct cudaExtent e;
            unsigned int flags;

            for (int i = 0; i < side * side; i++) {
                v[i] = (float)(10 * (l + 1));
            }
            RT_EQ(cudaGetMipmappedArrayLevel(&la, mm, l), cudaSuccess, "cudaGetMipmappedArrayLevel");
            cudaArrayGetInfo(&q, &e, &flags, la);
            ok &= (int)e.width == side && (int)e.height == side;
            RT_EQ(cudaMemcpy2DToArray(la, 0, 0, v, side * sizeof(float), side * sizeof(float), side,
                                      cudaMemcpyHostToDevice),
                  cudaSuccess, "fill a level");
        }
        RT_OK(ok, "levels of 8x8, 4x4, 2x2, 1x1");
        {
            cudaArray_t la = NULL;
            RT_OK(cudaGetMipmappedArrayLevel(&la, mm, nlev) != cudaSuccess, "no level 4");
            cudaGetLastError();
            if (on_shim()) {
                cudaGetMipmappedArrayLevel(&la, mm, 1);
                RT_OK(cudaFreeArray(la) != cudaSuccess, "a level cannot be freed alone");
                cudaGetLastError();
            }
        }
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeMipmappedArray;
        rd.res.mipmap.mipmap = mm;
        memset(&td, 0, sizeof(td));
        td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
        td.filterMode = cudaFilterModeLinear;
        td.mipmapFilterMode = cudaFilterModePoint;
        td.normalizedCoords = 1;
        td.maxMipmapLevelClamp = (float)(nlev - 1);
        td.readMode = cudaReadModeElementType;
        RT_EQ(cudaCreateTextureObject(&t, &rd, &td, NULL), cudaSuccess, "mipmapped texture");
        cudaMalloc(&dlod, sizeof(lods));
        cudaMalloc(&dout, sizeof(got));
        cudaMemcpy(dlod, lods, sizeof(lods), cudaMemcpyHostToDevice);
        mip_fetch<<<1, nl + 1>>>(t, dlod, dout, nl, 2.0f);
        RT_EQ(cudaMemcpy(got, dout, (nl + 1) * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess, "tex2DLod, tex2DGrad");
        RT_OK(got[0] == 10 && got[1] == 20 && got[2] == 30 && got[3] == 40 && got[4] == 10 &&
              got[5] == 30 && got[6] == 40 && got[7] == 10 && got[8] == 20,
              "point mipmap filtering: the nearest level, clamped");
        RT_OK(got[nl] == 20, "tex2DGrad: gradients of 2 texels select level 1");
        cudaDestroyTextureObject(t);
        td.mipmapFilterMode = cudaFilterModeLinear;
        td.mipmapLevelBias = 0.5f;
        RT_EQ(cudaCreateTextureObject(&t, &rd, &td, NULL), cudaSuccess,
              "mipmapped texture, linear between levels, bias 0.5");
        mip_fetch<<<1, nl + 1>>>(t, dlod, dout, nl, 1.0f);
        RT_EQ(cudaMemcpy(got, dout, (nl + 1) * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess, "fetch again");
        RT_OK(got[0] == 15 && got[1] == 25 && got[3] == 40 && got[8] == 27.5f && got[nl] == 15,
              "linear mipmap filtering blends the two levels around lod + bias");
        {
            struct cudaResourceDesc q;
            RT_EQ(cudaGetTextureObjectResourceDesc(&q, t), cudaSuccess, "resource description");
            RT_OK(q.resType == cudaResourceTypeMipmappedArray && q.res.mipmap.mipmap == mm,
                  "it names the mipmapped array");
        }
        cudaDestroyTextureObject(t);
        RT_EQ(cudaFreeMipmappedArray(mm), cudaSuccess, "cudaFreeMipmappedArray");
        if (on_shim()) {
            RT_OK(cudaFreeMipmappedArray(mm) != cudaSuccess, "freeing it twice fails");
            cudaGetLastError();
        }
        cudaFree(dlod);
        cudaFree(dout);
    }

    /* ---- cubemaps ----------------------------------------------------------------- */
    {
        const int cw = 4, ncube = 2, nd = 48;
        cudaArray_t ca = NULL;
        cudaSurfaceObject_t s = 0;
        struct cudaResourceDesc rd;
        float4 dir[48], *ddir = NULL;
        float got[48], *dout = NULL, faces[12][4][4];
        struct cudaMemcpy3DParms p;
        int ok = 1, bad = -1;

        RT_EQ(cudaMalloc3DArray(&ca, &fd, make_cudaExtent(cw, cw, 6 * ncube),
                                cudaArrayCubemap | cudaArrayLayered | cudaArraySurfaceLoadStore),
              cudaSuccess, "cudaMalloc3DArray, 2 layered cubemaps of 4x4 faces");
        memset(&rd, 0, sizeof(rd));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = ca;
        RT_EQ(cudaCreateSurfaceObject(&s, &rd), cudaSuccess, "cubemap surface");
        cube_write<<<6 * ncube, dim3(cw, cw)>>>(s, cw, ncube);
        memset(&p, 0, sizeof(p));
        p.srcArray = ca;
        p.dstPtr = make_cudaPitchedPtr(faces, cw * sizeof(float), cw, cw);
        p.extent = make_cudaExtent(cw, cw, 6 * ncube);
        p.kind = cudaMemcpyDeviceToHost;
        RT_EQ(cudaMemcpy3D(&p), cudaSuccess, "the faces back");
        for (int f = 0; f < 6 * ncube; f++) {
            for (int y = 0; y < cw; y++) {
                for (int x = 0; x < cw; x++) {
                    ok &= faces[f][y][x] == (float)(10000 * (f / 6) + 1000 * (f % 6) + 10 * y + x);
                }
            }
        }
        RT_OK(ok, "surfCubemapLayeredwrite: face by face");
        cudaTextureObject_t t = make_tex(ca, 0, 0, 0, cudaReadModeElementType);
        RT_OK(t != 0, "cubemap texture");
        for (int i = 0; i < nd; i++) {
            /* directions all round, off the diagonals */
            float a = 0.37f + (float)i * 0.71f, b = -1.3f + (float)i * 0.113f;
            dir[i] = make_float4(cosf(a) * cosf(b), sinf(b), sinf(a) * cosf(b), 0.0f);
        }
        cudaMalloc(&ddir, sizeof(dir));
        cudaMalloc(&dout, sizeof(got));
        cudaMemcpy(ddir, dir, sizeof(dir), cudaMemcpyHostToDevice);
        for (int layer = -1; layer < ncube; layer++) {
            cube_fetch<<<1, nd>>>(t, ddir, dout, nd, layer);
            cudaMemcpy(got, dout, sizeof(got), cudaMemcpyDeviceToHost);
            for (int i = 0; i < nd && bad < 0; i++) {
                if (got[i] != ref_cube(dir[i].x, dir[i].y, dir[i].z, cw, layer < 0 ? 0 : layer)) {
                    bad = i;
                    printf("# cube %d, direction (%g, %g, %g): got %g want %g\n", layer,
                           dir[i].x, dir[i].y, dir[i].z, got[i],
                           ref_cube(dir[i].x, dir[i].y, dir[i].z, cw, layer < 0 ? 0 : layer));
                }
            }
        }
        RT_EQ(bad, -1, "texCubemap, texCubemapLayered: the face and texel the table gives");
        cudaDestroyTextureObject(t);
        cudaDestroySurfaceObject(s);
        cudaFreeArray(ca);
        cudaFree(ddir);
        cudaFree(dout);
    }

    /* ---- bad requests ----------------------------------------------------- */
    RT_OK(cudaMemcpy2DToArray(arr, 4 * sizeof(float), 0, img, W * sizeof(float),
                              W * sizeof(float), H, cudaMemcpyHostToDevice) != cudaSuccess,
          "a copy wider than the array is left of it fails");
    cudaGetLastError();
    RT_OK(cudaMemcpy2DToArray(arr, 0, 1, img, W * sizeof(float), W * sizeof(float), H,
                              cudaMemcpyHostToDevice) != cudaSuccess,
          "a copy past the last row fails");
    cudaGetLastError();
    RT_EQ(cudaFreeArray(arr), cudaSuccess, "cudaFreeArray");
    if (on_shim()) {
        struct cudaResourceDesc rd;
        struct cudaTextureDesc td;
        cudaTextureObject_t t = 0;

        RT_OK(cudaMemcpy2DToArray(arr, 0, 0, img, W * sizeof(float), W * sizeof(float), H,
                                  cudaMemcpyHostToDevice) != cudaSuccess,
              "a copy into a freed array fails");
        cudaGetLastError();
        memset(&rd, 0, sizeof(rd));
        memset(&td, 0, sizeof(td));
        rd.resType = cudaResourceTypeArray;
        rd.res.array.array = arr;
        RT_OK(cudaCreateTextureObject(&t, &rd, &td, NULL) != cudaSuccess,
              "a texture of a freed array fails");
        cudaGetLastError();
    }
    RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "the context is still healthy");
    return rt_done();
}
