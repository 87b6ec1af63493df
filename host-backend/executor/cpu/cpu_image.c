/*
 * cpu_image.c - reading module images: fatbins, ELF cubins and PTX.
 *
 * Fatbin layout (see shared/docs/cuda-driver-interop-facts.md, section 3):
 * a 16-byte header (u32 magic 0xBA55ED50, u16 version, u16 header size,
 * u64 payload size) followed by entries, each with its own header
 *   +0x00 u16 kind (1 PTX, 2 ELF)   +0x02 u16 version
 *   +0x04 u32 entry header size     +0x08 u64 payload size
 *   +0x10 u32 compressed size       +0x14 u32 unknown
 *   +0x18 u16 PTX minor, u16 major  +0x1c u32 SM arch
 *   +0x20 u32 name offset, u32 len  +0x28 u64 flags
 *   +0x38 u64 decompressed size (when flags has 0x8000 or 0x2000: zstd)
 * and its payload right after the entry header.
 *
 * Every offset and size comes from the client: all are checked against
 * the buffer with overflow-safe arithmetic, decompressed sizes are capped
 * at CPU_IMAGE_MAX, and anything malformed is CUDA_ERROR_INVALID_IMAGE.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cpu_internal.h"

#define CPU_FATBIN_MAGIC        0xBA55ED50u
#define CPU_FATBIN_HDR          16
#define CPU_FATBIN_ENTRY_MIN    0x30
#define CPU_FATBIN_KIND_PTX     1
#define CPU_FATBIN_KIND_ELF     2
#define CPU_FATBIN_ZSTD         0x8000u
#define CPU_FATBIN_ZSTD_OLD     0x2000u
#define CPU_PREFERRED_ARCH      (CPU_CC_MAJOR * 10 + CPU_CC_MINOR)

/* .nv.info records (cubin) */
#define CPU_EIFMT_SVAL          0x04
#define CPU_EIATTR_KPARAM_INFO  0x17

static uint16_t cpu_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t cpu_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t cpu_rd64(const uint8_t *p)
{
    return (uint64_t)cpu_rd32(p) | (uint64_t)cpu_rd32(p + 4) << 32;
}

void cpu_image_free(struct cpu_image *img)
{
    size_t i;

    for (i = 0; i < img->nkernels; i++) {
        free(img->kernels[i].name);
        free(img->kernels[i].params);
    }
    for (i = 0; i < img->nglobals; i++) {
        free(img->globals[i].name);
        free(img->globals[i].init);
    }
    free(img->kernels);
    free(img->globals);
    free(img->ptx);
    free(img->data);
    memset(img, 0, sizeof(*img));
}

/* ---- ELF ------------------------------------------------------------- */

struct cpu_elf {
    const uint8_t *data;
    size_t size;
    Elf64_Ehdr eh;
    const uint8_t *shdrs;
    uint16_t *info_of;          /* .text section index -> its .nv.info.NAME */
};

static bool cpu_elf_shdr(const struct cpu_elf *e, size_t i, Elf64_Shdr *sh)
{
    if (i >= e->eh.e_shnum) {
        return false;
    }
    memcpy(sh, e->shdrs + i * e->eh.e_shentsize, sizeof(*sh));
    return true;
}

/* The bytes of section @sh, if they lie inside the file. */
static const uint8_t *cpu_elf_bytes(const struct cpu_elf *e,
                                    const Elf64_Shdr *sh)
{
    if (sh->sh_type == SHT_NOBITS || sh->sh_offset > e->size ||
        sh->sh_size > e->size - sh->sh_offset) {
        return NULL;
    }
    return e->data + sh->sh_offset;
}

/* NUL-terminated string at @off of string table section @idx, or NULL. */
static const char *cpu_elf_str(const struct cpu_elf *e, size_t idx,
                               uint64_t off)
{
    Elf64_Shdr sh;
    const uint8_t *p;

    if (!cpu_elf_shdr(e, idx, &sh) || sh.sh_type != SHT_STRTAB) {
        return NULL;
    }
    p = cpu_elf_bytes(e, &sh);
    if (!p || off >= sh.sh_size ||
        !memchr(p + off, 0, sh.sh_size - off)) {
        return NULL;
    }
    return (const char *)p + off;
}

static const char *cpu_elf_section_name(const struct cpu_elf *e, size_t idx)
{
    Elf64_Shdr sh;

    if (!cpu_elf_shdr(e, idx, &sh)) {
        return NULL;
    }
    return cpu_elf_str(e, e->eh.e_shstrndx, sh.sh_name);
}

static bool cpu_str_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Parameter layout from ".nv.info.NAME": EIATTR_KPARAM_INFO records give
 * each parameter's ordinal, offset and size.  Leaves nparams at -1 when
 * the records are missing or do not cover 0..n-1.
 */
static CUresult cpu_elf_params(const struct cpu_elf *e, size_t text,
                               struct cpu_kernel_desc *k)
{
    size_t n = 0, seen = 0;
    const uint8_t *p = NULL;
    uint64_t len = 0, off;
    struct cpu_param *params;
    const char *name;
    Elf64_Shdr sh;
    bool *have;

    if (!e->info_of[text] || !cpu_elf_shdr(e, e->info_of[text], &sh) ||
        !(name = cpu_elf_section_name(e, e->info_of[text])) ||
        strcmp(name + strlen(".nv.info."), k->name) != 0) {
        return CUDA_SUCCESS;
    }
    p = cpu_elf_bytes(e, &sh);
    len = sh.sh_size;
    if (!p) {
        return CUDA_SUCCESS;
    }
    /* First pass: how many parameters. */
    for (off = 0; len - off >= 4;) {
        uint8_t fmt = p[off], attr = p[off + 1];
        uint64_t rlen = 4;

        if (fmt == CPU_EIFMT_SVAL) {
            rlen += cpu_rd16(p + off + 2);
            if (rlen > len - off) {
                return CUDA_SUCCESS;
            }
            if (attr == CPU_EIATTR_KPARAM_INFO && rlen >= 16) {
                size_t ord = cpu_rd16(p + off + 8);

                n = ord + 1 > n ? ord + 1 : n;
            }
        }
        off += rlen;
    }
    if (n == 0) {
        return CUDA_SUCCESS;
    }
    params = calloc(n, sizeof(*params));
    have = calloc(n, sizeof(*have));
    if (!params || !have) {
        free(params);
        free(have);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (off = 0; len - off >= 4;) {
        uint8_t fmt = p[off], attr = p[off + 1];
        uint64_t rlen = 4;

        if (fmt == CPU_EIFMT_SVAL) {
            rlen += cpu_rd16(p + off + 2);
            if (attr == CPU_EIATTR_KPARAM_INFO && rlen >= 16) {
                size_t ord = cpu_rd16(p + off + 8);

                if (ord >= n) {
                    break;      /* cannot happen: n is the maximum + 1 */
                }
                if (!have[ord]) {
                    have[ord] = true;
                    seen++;
                }
                params[ord].offset = cpu_rd16(p + off + 10);
                params[ord].size = (cpu_rd32(p + off + 12) >> 18) & 0x3fff;
            }
        }
        off += rlen;
    }
    free(have);
    if (seen != n) {
        free(params);
        return CUDA_SUCCESS;
    }
    k->params = params;
    k->nparams = (int)n;
    return CUDA_SUCCESS;
}

static char *cpu_strdup_bounded(const char *s)
{
    size_t n = strnlen(s, CPU_NAME_MAX + 1);
    char *d;

    if (n == 0 || n > CPU_NAME_MAX) {
        return NULL;
    }
    d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static CUresult cpu_elf_symbol(const struct cpu_elf *e, struct cpu_image *img,
                               const Elf64_Sym *sym, const char *name,
                               size_t *kcap, size_t *gcap)
{
    const char *sec = cpu_elf_section_name(e, sym->st_shndx);
    int type = ELF64_ST_TYPE(sym->st_info);
    CUresult rc;

    if (!sec || !*name || name[0] == '$' || name[0] == '.') {
        return CUDA_SUCCESS;
    }
    if (type == STT_FUNC && cpu_str_prefix(sec, ".text.") &&
        strcmp(sec + strlen(".text."), name) == 0) {
        struct cpu_kernel_desc k = { .nparams = -1 };

        /* Device functions live in .text.NAME too; kernels are the ones
         * marked STO_CUDA_ENTRY (0x10) in st_other. */
        if (!(sym->st_other & 0x10)) {
            return CUDA_SUCCESS;
        }
        if (img->nkernels == *kcap) {
            size_t ncap = *kcap ? *kcap * 2 : 16;
            struct cpu_kernel_desc *v = realloc(img->kernels,
                                                ncap * sizeof(*v));

            if (!v) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            img->kernels = v;
            *kcap = ncap;
        }
        k.name = cpu_strdup_bounded(name);
        if (!k.name) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        rc = cpu_elf_params(e, sym->st_shndx, &k);
        if (rc != CUDA_SUCCESS) {
            free(k.name);
            return rc;
        }
        img->kernels[img->nkernels++] = k;
    } else if (type == STT_OBJECT && sym->st_size > 0 &&
               (cpu_str_prefix(sec, ".nv.global") ||
                (cpu_str_prefix(sec, ".nv.constant") &&
                 !cpu_str_prefix(sec, ".nv.constant0")))) {
        struct cpu_global_desc g = { 0 };
        Elf64_Shdr sh;
        const uint8_t *bytes;

        if (img->nglobals == *gcap) {
            size_t ncap = *gcap ? *gcap * 2 : 16;
            struct cpu_global_desc *v = realloc(img->globals,
                                                ncap * sizeof(*v));

            if (!v) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            img->globals = v;
            *gcap = ncap;
        }
        g.name = cpu_strdup_bounded(name);
        if (!g.name) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        g.size = sym->st_size;
        /* Initialised data (.nv.global.init, .nv.constantN) is in the file. */
        if (cpu_elf_shdr(e, sym->st_shndx, &sh) &&
            (bytes = cpu_elf_bytes(e, &sh)) != NULL &&
            sym->st_value <= sh.sh_size &&
            sym->st_size <= sh.sh_size - sym->st_value) {
            g.init = malloc(sym->st_size);
            if (!g.init) {
                free(g.name);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            memcpy(g.init, bytes + sym->st_value, sym->st_size);
            g.init_len = sym->st_size;
        }
        img->globals[img->nglobals++] = g;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_elf_scan(struct cpu_image *img, const uint8_t *elf, size_t size)
{
    struct cpu_elf e = { .data = elf, .size = size };
    size_t kcap = img->nkernels, gcap = img->nglobals;
    Elf64_Shdr symtab;
    const uint8_t *syms;
    size_t i, nsyms;
    CUresult rc = CUDA_SUCCESS;

    if (size < sizeof(Elf64_Ehdr)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    memcpy(&e.eh, elf, sizeof(e.eh));
    if (memcmp(e.eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        e.eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        e.eh.e_ident[EI_DATA] != ELFDATA2LSB) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (e.eh.e_shnum == 0) {
        return CUDA_SUCCESS;        /* nothing named: no kernels */
    }
    if (e.eh.e_shentsize < sizeof(Elf64_Shdr) || e.eh.e_shoff > size ||
        (uint64_t)e.eh.e_shnum * e.eh.e_shentsize > size - e.eh.e_shoff ||
        e.eh.e_shstrndx >= e.eh.e_shnum) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    e.shdrs = elf + e.eh.e_shoff;
    for (i = 1; i < e.eh.e_shnum; i++) {
        if (cpu_elf_shdr(&e, i, &symtab) && symtab.sh_type == SHT_SYMTAB) {
            break;
        }
    }
    if (i == e.eh.e_shnum) {
        return CUDA_SUCCESS;
    }
    syms = cpu_elf_bytes(&e, &symtab);
    if (!syms || symtab.sh_entsize < sizeof(Elf64_Sym)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    /* Each .nv.info.NAME names its kernel's .text section in sh_info. */
    e.info_of = calloc(e.eh.e_shnum, sizeof(*e.info_of));
    if (!e.info_of) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (i = 1; i < e.eh.e_shnum; i++) {
        const char *name = cpu_elf_section_name(&e, i);
        Elf64_Shdr sh;

        if (name && cpu_str_prefix(name, ".nv.info.") &&
            cpu_elf_shdr(&e, i, &sh) && sh.sh_info < e.eh.e_shnum) {
            e.info_of[sh.sh_info] = (uint16_t)i;
        }
    }
    nsyms = symtab.sh_size / symtab.sh_entsize;
    for (i = 1; i < nsyms; i++) {
        Elf64_Sym sym;
        const char *name;

        memcpy(&sym, syms + i * symtab.sh_entsize, sizeof(sym));
        name = cpu_elf_str(&e, symtab.sh_link, sym.st_name);
        if (!name) {
            continue;
        }
        rc = cpu_elf_symbol(&e, img, &sym, name, &kcap, &gcap);
        if (rc != CUDA_SUCCESS) {
            break;
        }
    }
    free(e.info_of);
    return rc;
}

/* ---- fatbin ---------------------------------------------------------- */

struct cpu_fatbin_entry {
    const uint8_t *payload;
    uint64_t payload_size;
    uint32_t compressed_size;
    uint64_t decompressed_size;
    bool compressed;
    uint32_t arch;
};

/*
 * The bytes of an entry, decompressed if needed.  *@owned is set when the
 * result was allocated and must be freed.
 */
static CUresult cpu_fatbin_payload(const struct cpu_fatbin_entry *en,
                                   const uint8_t **out, size_t *out_len,
                                   uint8_t **owned)
{
    size_t src_len, got;
    uint8_t *dst;

    *owned = NULL;
    if (!en->compressed) {
        *out = en->payload;
        *out_len = en->payload_size;
        return CUDA_SUCCESS;
    }
    if (en->decompressed_size == 0 || en->decompressed_size > CPU_IMAGE_MAX) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    src_len = en->compressed_size && en->compressed_size <= en->payload_size
              ? en->compressed_size : en->payload_size;
    /* Trailing padding is not part of the frame. */
    got = ZSTD_findFrameCompressedSize(en->payload, src_len);
    if (ZSTD_isError(got)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    /* One extra byte so that PTX can be NUL-terminated in place. */
    dst = malloc(en->decompressed_size + 1);
    if (!dst) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    got = ZSTD_decompress(dst, en->decompressed_size, en->payload, got);
    if (ZSTD_isError(got) || got != en->decompressed_size) {
        free(dst);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *out = dst;
    *out_len = got;
    *owned = dst;
    return CUDA_SUCCESS;
}

/* Copy PTX text of at most @len bytes (it may stop at a NUL) into @img. */
static CUresult cpu_image_take_ptx(struct cpu_image *img, const uint8_t *text,
                                   size_t len)
{
    const uint8_t *nul = memchr(text, 0, len);

    if (nul) {
        len = (size_t)(nul - text);
    }
    img->ptx = malloc(len + 1);
    if (!img->ptx) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(img->ptx, text, len);
    img->ptx[len] = 0;
    img->ptx_len = len;
    return cpu_ptx_scan(img);
}

/* Which entry to use: the preferred arch if present, else the highest. */
static bool cpu_fatbin_better(const struct cpu_fatbin_entry *cand,
                              const struct cpu_fatbin_entry *best)
{
    if (!best->payload) {
        return true;
    }
    if (best->arch == CPU_PREFERRED_ARCH) {
        return false;
    }
    return cand->arch == CPU_PREFERRED_ARCH || cand->arch > best->arch;
}

static bool cpu_all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static CUresult cpu_fatbin_parse(struct cpu_image *img, const uint8_t *data,
                                 size_t size)
{
    struct cpu_fatbin_entry ptx = { 0 }, elf = { 0 };
    uint16_t hdr = cpu_rd16(data + 6);
    uint64_t payload = cpu_rd64(data + 8);
    uint64_t off, end;
    const uint8_t *bytes;
    size_t len;
    uint8_t *owned;
    CUresult rc;

    if (hdr < CPU_FATBIN_HDR || hdr > size || payload > size - hdr) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    end = hdr + payload;
    for (off = hdr; off < end;) {
        const uint8_t *p = data + off;
        struct cpu_fatbin_entry en = { 0 };
        uint16_t kind;
        uint32_t ehs;
        uint64_t flags;

        if (end - off < CPU_FATBIN_ENTRY_MIN) {
            /* Zero padding is allowed; a truncated header is not. */
            if (!cpu_all_zero(p, end - off)) {
                return CUDA_ERROR_INVALID_IMAGE;
            }
            break;
        }
        kind = cpu_rd16(p);
        ehs = cpu_rd32(p + 4);
        en.payload_size = cpu_rd64(p + 8);
        en.compressed_size = cpu_rd32(p + 0x10);
        en.arch = cpu_rd32(p + 0x1c);
        flags = cpu_rd64(p + 0x28);
        if (ehs < CPU_FATBIN_ENTRY_MIN || ehs > end - off ||
            en.payload_size > end - off - ehs) {
            return CUDA_ERROR_INVALID_IMAGE;
        }
        en.payload = p + ehs;
        en.compressed = flags & (CPU_FATBIN_ZSTD | CPU_FATBIN_ZSTD_OLD);
        if (en.compressed) {
            if (ehs < 0x40) {
                return CUDA_ERROR_INVALID_IMAGE;
            }
            en.decompressed_size = cpu_rd64(p + 0x38);
        }
        if (kind == CPU_FATBIN_KIND_PTX && cpu_fatbin_better(&en, &ptx)) {
            ptx = en;
        } else if (kind == CPU_FATBIN_KIND_ELF &&
                   cpu_fatbin_better(&en, &elf)) {
            elf = en;
        }
        off += ehs + en.payload_size;
    }
    if (!ptx.payload && !elf.payload) {
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    /* PTX names kernels and globals and is what the interpreter runs. */
    if (ptx.payload) {
        rc = cpu_fatbin_payload(&ptx, &bytes, &len, &owned);
        if (rc == CUDA_SUCCESS) {
            rc = cpu_image_take_ptx(img, bytes, len);
            free(owned);
        }
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        img->binary_arch = CPU_PREFERRED_ARCH;    /* "JIT-compiled" */
        return CUDA_SUCCESS;
    }
    rc = cpu_fatbin_payload(&elf, &bytes, &len, &owned);
    if (rc == CUDA_SUCCESS) {
        rc = cpu_elf_scan(img, bytes, len);
        free(owned);
    }
    img->binary_arch = (int)(elf.arch < 10000 ? elf.arch : 0);
    img->ptx_arch = img->binary_arch;
    return rc;
}

/* ---- dispatch -------------------------------------------------------- */

CUresult cpu_image_parse(struct cpu_image *img, const void *data, size_t size)
{
    const uint8_t *p = data;
    CUresult rc;

    memset(img, 0, sizeof(*img));
    if (!data || size < 4 || size > CPU_IMAGE_MAX) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (size >= CPU_FATBIN_HDR && cpu_rd32(p) == CPU_FATBIN_MAGIC) {
        rc = cpu_fatbin_parse(img, p, size);
    } else if (memcmp(p, ELFMAG, SELFMAG) == 0) {
        rc = cpu_elf_scan(img, p, size);
        if (rc == CUDA_SUCCESS && size >= sizeof(Elf64_Ehdr)) {
            /* sm arch in e_flags bits 8..15 (newer ABI) or 0..7 */
            uint32_t fl = cpu_rd32(p + offsetof(Elf64_Ehdr, e_flags));

            img->binary_arch = (int)((fl >> 8) & 0xff ? (fl >> 8) & 0xff
                                                      : fl & 0xff);
            img->ptx_arch = img->binary_arch;
        }
    } else {
        rc = cpu_image_take_ptx(img, p, size);
    }
    if (rc == CUDA_SUCCESS) {
        /* Kept for later stages; the caller's buffer is not. */
        img->data = malloc(size);
        if (img->data) {
            memcpy(img->data, p, size);
            img->size = size;
        } else {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (rc != CUDA_SUCCESS) {
        cpu_image_free(img);
    }
    return rc;
}

size_t cpu_image_guess_size(const void *data)
{
    const uint8_t *p = data;
    Elf64_Ehdr eh;
    uint64_t end;

    if (!data) {
        return 0;
    }
    if (cpu_rd32(p) == CPU_FATBIN_MAGIC) {
        end = (uint64_t)cpu_rd16(p + 6) + cpu_rd64(p + 8);
        return end <= CPU_IMAGE_MAX ? (size_t)end : 0;
    }
    if (memcmp(p, ELFMAG, SELFMAG) == 0) {
        /* The largest end of the header tables and of any section. */
        uint16_t i;

        memcpy(&eh, p, sizeof(eh));
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_shentsize < sizeof(Elf64_Shdr) ||
            eh.e_shoff > CPU_IMAGE_MAX || eh.e_phoff > CPU_IMAGE_MAX) {
            return 0;
        }
        end = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
        if (eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize > end) {
            end = eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize;
        }
        for (i = 0; i < eh.e_shnum && end <= CPU_IMAGE_MAX; i++) {
            Elf64_Shdr sh;

            memcpy(&sh, p + eh.e_shoff + (size_t)i * eh.e_shentsize,
                   sizeof(sh));
            if (sh.sh_type != SHT_NOBITS && sh.sh_offset <= CPU_IMAGE_MAX &&
                sh.sh_size <= CPU_IMAGE_MAX &&
                sh.sh_offset + sh.sh_size > end) {
                end = sh.sh_offset + sh.sh_size;
            }
        }
        return end <= CPU_IMAGE_MAX && end >= sizeof(eh) ? (size_t)end : 0;
    }
    /* PTX: NUL-terminated; the NUL counts. */
    end = strnlen((const char *)p, CPU_IMAGE_MAX);
    return end < CPU_IMAGE_MAX ? (size_t)end + 1 : 0;
}
