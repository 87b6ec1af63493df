/*
 * ptx_texture.c - what the texture and surface units do, for the PTX
 * interpreter: addressing modes, point and linear filtering, element
 * formats and read modes, as the CUDA C++ Programming Guide's "Texture
 * Fetching" appendix describes them:
 *
 *  - normalized coordinates are scaled by the size of their axis; wrap
 *    keeps frac(x) and mirror reflects every other period first (both are
 *    for normalized coordinates only; unnormalized ones clamp instead);
 *  - point sampling reads T[floor(x)];
 *  - linear filtering reads T[i] and T[i + 1] around xB = x - 0.5,
 *    i = floor(xB), weighted by alpha = frac(xB) held in 9-bit fixed point
 *    with 8 bits of fraction (so results step in 1/256ths between texels,
 *    as on the hardware); 2D and 3D are the products of the axes' weights;
 *  - out-of-range texel indices clamp to the edge, wrap, mirror, or read
 *    the border colour;
 *  - 8- and 16-bit integer formats read as floats in [0, 1] ([-1, 1]
 *    signed) unless CU_TRSF_READ_AS_INTEGER; 32-bit integers always read
 *    as integers, and integer reads are never filtered;
 *  - 8-bit unsigned colour channels of an sRGB texture (CU_TRSF_SRGB) read
 *    normalized are converted to linear with the sRGB transfer function;
 *  - channels a format lacks read as 0, alpha (w) as 1;
 *  - gather (tld4) returns one component of the bilinear footprint's four
 *    texels, counter-clockwise from the lower left, unweighted.
 *
 * Layered textures (tex.a1d/a2d, tld4 a2d) pick a layer, clamped to the ones there
 * are, and filter within it.  Mipmapped textures take the level of detail
 * tex.level gives, or log2 of the larger gradient's length in texels
 * (tex.grad, isotropic), or 0 (plain tex); plus the bias, clamped, then
 * the nearest level or a blend of the two around it.  Anything but a
 * mipmapped array has one level.  Surfaces are byte-addressed in x (suld.b/sust.b),
 * with trap, clamp or zero behaviour at the edges; a layer out of range
 * is out of range like any coordinate.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <math.h>
#include <string.h>

#include "ptx_internal.h"
#include "ptx_texture.h"

/* Beyond a tex's mod: a cubemap face, read with normalized coordinates
 * and clamped at its edges. */
#define TX_CUBE_FACE    0x100

static float tx_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    float f;

    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 */
        f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

static float tx_bits_f(uint32_t b)
{
    float f;

    memcpy(&f, &b, 4);
    return f;
}

static uint32_t tx_f_bits(float f)
{
    uint32_t b;

    memcpy(&b, &f, 4);
    return b;
}

/* Does @v read as floats? */
static bool tx_reads_float(const struct cpu_tex_view *v)
{
    switch (v->fmt) {
    case CU_AD_FORMAT_FLOAT:
    case CU_AD_FORMAT_HALF:
        return true;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
        return false;
    default:
        return !(v->tex->flags & CU_TRSF_READ_AS_INTEGER);
    }
}

/* An sRGB-encoded colour channel in [0, 1], linear (the sRGB standard's
 * transfer function; alpha is never encoded). */
static float tx_srgb(float c)
{
    return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}

/* Channel @ch of the element at @p, as the texture reads it. */
static uint32_t tx_channel(const struct cpu_tex_view *v, const uint8_t *p, unsigned ch,
                           bool as_float)
{
    switch (v->fmt) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
        if (as_float && ch < 3 && (v->tex->flags & CU_TRSF_SRGB)) {
            return tx_f_bits(tx_srgb((float)p[ch] / 255.0f));
        }
        return as_float ? tx_f_bits((float)p[ch] / 255.0f) : p[ch];
    case CU_AD_FORMAT_SIGNED_INT8: {
        int8_t x = (int8_t)p[ch];
        return as_float ? tx_f_bits(fmaxf((float)x / 127.0f, -1.0f)) : (uint32_t)(int32_t)x;
    }
    case CU_AD_FORMAT_UNSIGNED_INT16: {
        uint16_t x;
        memcpy(&x, p + 2 * ch, 2);
        return as_float ? tx_f_bits((float)x / 65535.0f) : x;
    }
    case CU_AD_FORMAT_SIGNED_INT16: {
        int16_t x;
        memcpy(&x, p + 2 * ch, 2);
        return as_float ? tx_f_bits(fmaxf((float)x / 32767.0f, -1.0f)) : (uint32_t)(int32_t)x;
    }
    case CU_AD_FORMAT_HALF: {
        uint16_t x;
        memcpy(&x, p + 2 * ch, 2);
        return tx_f_bits(tx_half(x));
    }
    default: {
        uint32_t x;
        memcpy(&x, p + 4 * ch, 4);
        return x;
    }
    }
}

/* The element at integer texel (i, j, k), or the border colour when one
 * of them is -1 (out of range under border addressing). */
static void tx_texel(const struct cpu_tex_view *v, const struct cpu_tex_level *lv,
                     const int64_t idx[3], bool as_float, uint32_t out[4])
{
    if (idx[0] < 0 || idx[1] < 0 || idx[2] < 0) {
        for (int c = 0; c < 4; c++) {
            out[c] = tx_f_bits(v->tex->borderColor[c]);
            if (!as_float) {
                out[c] = (uint32_t)(int32_t)v->tex->borderColor[c];
            }
        }
        return;
    }
    const uint8_t *p = lv->data + (size_t)idx[2] * lv->slice + (size_t)idx[1] * lv->pitch +
                       (size_t)idx[0] * v->elem;
    for (unsigned c = 0; c < 4; c++) {
        if (c < v->nch) {
            out[c] = tx_channel(v, p, c, as_float);
        } else {
            out[c] = c == 3 ? (as_float ? tx_f_bits(1.0f) : 1) : 0;
        }
    }
}

/* Texel index @i on an axis of @n under address mode @mode; -1: border. */
static int64_t tx_address(int64_t i, int64_t n, CUaddress_mode mode, bool norm)
{
    if (i >= 0 && i < n) {
        return i;
    }
    if (norm && mode == CU_TR_ADDRESS_MODE_WRAP) {
        i %= n;
        return i < 0 ? i + n : i;
    }
    if (norm && mode == CU_TR_ADDRESS_MODE_MIRROR) {
        int64_t p = i % (2 * n);

        p = p < 0 ? p + 2 * n : p;
        return p < n ? p : 2 * n - 1 - p;
    }
    if (mode == CU_TR_ADDRESS_MODE_BORDER) {
        return -1;
    }
    return i < 0 ? 0 : n - 1;
}

/* Coordinate @x on an axis of @n texels, in texels: normalized
 * coordinates are wrapped or mirrored first, then scaled, in single
 * precision as the hardware's are. */
static float tx_coord(float x, int64_t n, CUaddress_mode mode, bool norm)
{
    if (!norm) {
        return x;
    }
    if (mode == CU_TR_ADDRESS_MODE_WRAP) {
        x -= floorf(x);
    } else if (mode == CU_TR_ADDRESS_MODE_MIRROR) {
        float f = floorf(x);

        x -= f;
        if (fmodf(f, 2.0f) != 0.0f) {
            x = 1.0f - x;
        }
    }
    return x * (float)n;
}

/* Clamp a texel coordinate into what int64_t holds comfortably: far
 * outside the texture it makes no difference which texel it names. */
static int64_t tx_floor(float u)
{
    if (!(u > -1e15f)) {    /* NaN too */
        return (int64_t)-1e15;
    }
    if (u > 1e15f) {
        return (int64_t)1e15;
    }
    return (int64_t)floorf(u);
}

/* One level's fetch: @lv is the level, @scale what turns unnormalized
 * coordinates (level-0 texels) into its texels. */
static void tx_sample_level(const struct cpu_tex_view *v, const struct cpu_tex_level *lv,
                            float scale, unsigned mod, const uint32_t c[3], uint32_t out[4])
{
    unsigned dims = PTX_TEX_DIMS(mod);
    bool int_coords = mod & PTX_TEX_INT_COORDS;
    const CUDA_TEXTURE_DESC *td = v->tex;
    bool norm = (td->flags & CU_TRSF_NORMALIZED_COORDINATES) || (mod & TX_CUBE_FACE);
    bool as_float = tx_reads_float(v);
    const int64_t n[3] = { (int64_t)lv->w, (int64_t)lv->h, (int64_t)lv->d };
    CUaddress_mode am[3];
    int64_t i0[3] = { 0, 0, 0 };
    float w[3] = { 0, 0, 0 };
    bool gather = mod & PTX_TEX_GATHER;
    bool linear = (td->filterMode == CU_TR_FILTER_MODE_LINEAR && as_float && !int_coords) ||
                  gather;
    int64_t layer = 0;

    for (unsigned a = 0; a < 3; a++) {
        /* a cubemap face's edges clamp (no seamless filtering) */
        am[a] = mod & TX_CUBE_FACE ? CU_TR_ADDRESS_MODE_CLAMP : td->addressMode[a];
    }
    if (mod & PTX_TEX_LAYERED) {
        /* dims <= 2 (the decoder's rule); the layer is an integer */
        layer = (int32_t)c[2];
        layer = layer < 0 ? 0 : layer >= n[2] ? n[2] - 1 : layer;
    }

    for (unsigned a = 0; a < dims && a < 3; a++) {
        CUaddress_mode mode = am[a];

        if (int_coords) {
            /* tex1Dfetch and friends: an element index, never scaled. */
            i0[a] = (int32_t)c[a];
            continue;
        }
        float u = tx_coord(tx_bits_f(c[a]), n[a], mode, norm);

        if (!norm && scale != 1.0f) {
            u *= scale;
        }

        if (!linear) {
            i0[a] = tx_floor(u);
        } else {
            float xb = u - 0.5f;

            i0[a] = tx_floor(xb);
            /* alpha in 9-bit fixed point, 8 bits of fraction */
            w[a] = nearbyintf((xb - floorf(xb)) * 256.0f) / 256.0f;
        }
    }
    if (!linear) {
        int64_t idx[3];

        for (unsigned a = 0; a < 3; a++) {
            idx[a] = a < dims ? tx_address(i0[a], n[a], am[a], norm && !int_coords)
                              : 0;
        }
        if (mod & PTX_TEX_LAYERED) {
            idx[2] = layer;
        }
        tx_texel(v, lv, idx, as_float, out);
        return;
    }
    if (gather) {
        /* The bilinear footprint's texels, counter-clockwise from the
         * lower left: (i, j + 1), (i + 1, j + 1), (i + 1, j), (i, j). */
        static const int at[4][2] = { { 0, 1 }, { 1, 1 }, { 1, 0 }, { 0, 0 } };

        for (int k = 0; k < 4; k++) {
            int64_t idx[3] = { 0, 0, layer };
            uint32_t t[4];

            for (unsigned a = 0; a < 2; a++) {
                idx[a] = tx_address(i0[a] + at[k][a], n[a], am[a], norm);
            }
            tx_texel(v, lv, idx, as_float, t);
            out[k] = t[PTX_TEX_COMP(mod)];
        }
        return;
    }
    float acc[4] = { 0, 0, 0, 0 };
    unsigned corners = 1u << (dims > 3 ? 3 : dims);

    for (unsigned k = 0; k < corners; k++) {
        int64_t idx[3] = { 0, 0, 0 };
        float wt = 1.0f;
        uint32_t t[4];

        for (unsigned a = 0; a < dims && a < 3; a++) {
            unsigned hi = (k >> a) & 1;

            idx[a] = tx_address(i0[a] + hi, n[a], am[a], norm);
            wt *= hi ? w[a] : 1.0f - w[a];
        }
        if (mod & PTX_TEX_LAYERED) {
            idx[2] = layer;
        }
        if (wt == 0.0f) {
            continue;
        }
        tx_texel(v, lv, idx, true, t);
        for (int ch = 0; ch < 4; ch++) {
            acc[ch] += wt * tx_bits_f(t[ch]);
        }
    }
    for (int ch = 0; ch < 4; ch++) {
        out[ch] = tx_f_bits(acc[ch]);
    }
}

/*
 * A cubemap direction (x, y, z) to face coordinates, as the programming
 * guide's table says: the major axis picks the face (+x, -x, +y, -y, +z,
 * -z are 0..5) and its magnitude m divides the other two, (s, t), into
 * ((s / m + 1) / 2, (t / m + 1) / 2).  @out: u, v (float bits) and the
 * layer of the face, 6 per cubemap of a layered one.
 */
static void tx_cube(float x, float y, float z, int32_t cube, uint32_t out[3])
{
    float ax = fabsf(x), ay = fabsf(y), az = fabsf(z), m, s, t;
    int64_t layer;
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
    if (!(m > 0.0f) || !isfinite(m)) {
        s = t = 0.0f;       /* no direction (or NaN, inf): the face's middle */
        m = 1.0f;
    }
    out[0] = tx_f_bits((s / m + 1.0f) * 0.5f);
    out[1] = tx_f_bits((t / m + 1.0f) * 0.5f);
    /* a layer out of range clamps later; keep it an int32_t meanwhile */
    layer = (int64_t)(cube < 0 ? 0 : cube) * 6 + f;
    out[2] = (uint32_t)(int32_t)(layer > INT32_MAX ? INT32_MAX : layer);
}

/*
 * The level of detail: @lod (0 for plain tex, whose footprint a compute
 * thread cannot know) plus the bias, within the texture's clamps and the
 * levels there are; point mipmap filtering takes the nearest level, linear
 * blends the two around it.
 */
void ptx_tex_sample(const struct cpu_tex_view *v, unsigned mod, const uint32_t c[4],
                    float lod, uint32_t out[4])
{
    const CUDA_TEXTURE_DESC *td = v->tex;
    float l, f;
    unsigned l0;
    uint32_t hi[4], face[3];

    if (PTX_TEX_DIMS(mod) == PTX_TEX_CUBE) {
        /* c = x, y, z: the face and where on it, then a 2D layered fetch */
        tx_cube(tx_bits_f(c[0]), tx_bits_f(c[1]), tx_bits_f(c[2]),
                mod & PTX_TEX_LAYERED ? (int32_t)c[3] : 0, face);
        mod = 2 | PTX_TEX_LAYERED | TX_CUBE_FACE | (mod & PTX_TEX_GATHER);
        c = face;
    }
    if (v->nlevels <= 1 || (mod & (PTX_TEX_GATHER | PTX_TEX_INT_COORDS))) {
        tx_sample_level(v, &v->lv[0], 1.0f, mod, c, out);
        return;
    }
    l = lod + td->mipmapLevelBias;
    l = l > td->maxMipmapLevelClamp ? td->maxMipmapLevelClamp : l;
    l = l < td->minMipmapLevelClamp ? td->minMipmapLevelClamp : l;
    l = l > (float)(v->nlevels - 1) ? (float)(v->nlevels - 1) : l;
    l = l > 0.0f ? l : 0.0f;    /* NaN too */
    if (td->mipmapFilterMode == CU_TR_FILTER_MODE_POINT || !tx_reads_float(v)) {
        l0 = (unsigned)floorf(l + 0.5f);
        l0 = l0 < v->nlevels ? l0 : v->nlevels - 1;
        tx_sample_level(v, &v->lv[l0], (float)v->lv[l0].w / (float)v->w, mod, c, out);
        return;
    }
    l0 = (unsigned)floorf(l);
    f = l - (float)l0;
    tx_sample_level(v, &v->lv[l0], (float)v->lv[l0].w / (float)v->w, mod, c, out);
    if (f == 0.0f || l0 + 1 >= v->nlevels) {
        return;
    }
    tx_sample_level(v, &v->lv[l0 + 1], (float)v->lv[l0 + 1].w / (float)v->w, mod, c, hi);
    for (int ch = 0; ch < 4; ch++) {
        out[ch] = tx_f_bits((1.0f - f) * tx_bits_f(out[ch]) + f * tx_bits_f(hi[ch]));
    }
}

float ptx_tex_grad_lod(const struct cpu_tex_view *v, unsigned dims, const float dx[3],
                       const float dy[3])
{
    bool norm = v->tex->flags & CU_TRSF_NORMALIZED_COORDINATES;
    const float n[3] = { (float)v->w, (float)v->h, (float)v->d };
    float px = 0.0f, py = 0.0f, rho;

    for (unsigned a = 0; a < dims && a < 3; a++) {
        float sx = norm ? dx[a] * n[a] : dx[a], sy = norm ? dy[a] * n[a] : dy[a];

        px += sx * sx;
        py += sy * sy;
    }
    rho = sqrtf(px > py ? px : py);
    return rho > 0.0f ? log2f(rho) : -1e30f;
}

int ptx_surf_locate(const struct cpu_tex_view *v, unsigned mod, const int32_t c[3],
                    unsigned size, uint8_t **p)
{
    unsigned dims = PTX_TEX_DIMS(mod), mode = PTX_SURF_MODE(mod);
    int64_t x = c[0], y = dims > 1 ? c[1] : 0;
    int64_t z = dims > 2 || (mod & PTX_TEX_LAYERED) ? c[2] : 0;
    int64_t row = (int64_t)(v->w * v->elem), h = (int64_t)v->h, d = (int64_t)v->d;

    if (x < 0 || x > row - (int64_t)size || y < 0 || y >= h || z < 0 || z >= d) {
        if (mode == PTX_SURF_ZERO) {
            return 1;
        }
        if (mode == PTX_SURF_TRAP || (int64_t)size > row) {
            return -1;
        }
        /* clamp: to the nearest element inside */
        x = x < 0 ? 0 : x > row - (int64_t)size ? (row - (int64_t)size) / size * size : x;
        y = y < 0 ? 0 : y >= h ? h - 1 : y;
        z = z < 0 ? 0 : z >= d ? d - 1 : z;
    }
    *p = v->data + (size_t)z * v->slice + (size_t)y * v->pitch + (size_t)x;
    return 0;
}
