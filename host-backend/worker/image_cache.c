/*
 * image_cache.c - module images cached by content hash, once per daemon.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "image_cache.h"

/* The one upload in progress: a worker serves one session at a time. */
static struct {
    const struct vgcd_session *owner;
    uint8_t hash[32];
    uint8_t *buf;
    uint64_t size;
    uint64_t received;
} ic_up;

static char ic_dir[PATH_MAX];

/*
 * VGCD_IMAGE_CACHE_DIR names the directory; by default it is private to
 * the daemon and its user, under $XDG_RUNTIME_DIR or /tmp.  The daemon
 * fixes the name before it forks (vgcd_image_cache_init), so that workers
 * and the per-session processes of VMs, whatever their parent, agree.
 */
void vgcd_image_cache_init(void)
{
    const char *env = getenv("VGCD_IMAGE_CACHE_DIR");
    const char *base = getenv("XDG_RUNTIME_DIR");

    if (env && *env) {
        snprintf(ic_dir, sizeof(ic_dir), "%s", env);
        return;
    }
    if (!base || !*base) {
        base = "/tmp";
    }
    snprintf(ic_dir, sizeof(ic_dir), "%s/vgcd-images-%u-%d", base, (unsigned)getuid(),
             (int)getpid());
}

const char *vgcd_image_cache_dir(void)
{
    const char *env, *base;

    if (ic_dir[0]) {
        return ic_dir;
    }
    env = getenv("VGCD_IMAGE_CACHE_DIR");
    if (env && *env) {
        snprintf(ic_dir, sizeof(ic_dir), "%s", env);
        return ic_dir;
    }
    base = getenv("XDG_RUNTIME_DIR");
    if (!base || !*base) {
        base = "/tmp";
    }
    snprintf(ic_dir, sizeof(ic_dir), "%s/vgcd-images-%u-%d", base, (unsigned)getuid(),
             (int)getppid());
    return ic_dir;
}

/* Create the directory, or accept it only if it is ours and private. */
static bool ic_dir_ready(void)
{
    const char *dir = vgcd_image_cache_dir();
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return false;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077)) {
        fprintf(stderr, "vgcd: image cache %s is not a private directory of this user; "
                "not caching\n", dir);
        return false;
    }
    return true;
}

static void ic_path(char *out, size_t cap, const uint8_t hash[32])
{
    char hex[65];

    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    }
    snprintf(out, cap, "%s/%s", vgcd_image_cache_dir(), hex);
}

static bool ic_held(const uint8_t hash[32], uint64_t size)
{
    char path[PATH_MAX + 80];
    struct stat st;

    ic_path(path, sizeof(path), hash);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

static bool ic_hash_ok(const uint8_t *data, uint64_t size, const uint8_t want[32])
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t got[32];
    gsize got_len = sizeof(got);

    for (uint64_t off = 0; off < size;) {
        gssize n = size - off > (1u << 30) ? (gssize)(1u << 30) : (gssize)(size - off);
        g_checksum_update(c, data + off, n);
        off += (uint64_t)n;
    }
    g_checksum_get_digest(c, got, &got_len);
    g_checksum_free(c);
    return got_len == sizeof(got) && !memcmp(got, want, sizeof(got));
}

/* Write the finished upload under its hash: a private file, then rename. */
static CUresult ic_store(void)
{
    char path[PATH_MAX + 80], tmp[PATH_MAX + 96];
    int fd;

    if (!ic_hash_ok(ic_up.buf, ic_up.size, ic_up.hash)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (!ic_dir_ready()) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    ic_path(path, sizeof(path), ic_up.hash);
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    for (uint64_t off = 0; off < ic_up.size;) {
        ssize_t n = write(fd, ic_up.buf + off, ic_up.size - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        off += (uint64_t)n;
    }
    /* Workers racing on one image write the same bytes: last rename wins. */
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

static void ic_upload_reset(void)
{
    free(ic_up.buf);
    memset(&ic_up, 0, sizeof(ic_up));
}

static CUresult ic_put(struct vgcd_session *s, const uint8_t hash[32], uint64_t size,
                       uint64_t offset, const void *part, uint64_t part_len)
{
    CUresult res;

    if (offset == 0) {
        ic_upload_reset();
        if (!size || size > VGC_IMAGE_MAX) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        ic_up.buf = malloc(size);
        if (!ic_up.buf) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        ic_up.owner = s;
        memcpy(ic_up.hash, hash, 32);
        ic_up.size = size;
    }
    if (ic_up.owner != s || !ic_up.buf || memcmp(ic_up.hash, hash, 32) ||
        size != ic_up.size || offset != ic_up.received || part_len > size - offset) {
        ic_upload_reset();
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (part_len) {
        memcpy(ic_up.buf + offset, part, part_len);
    }
    ic_up.received += part_len;
    if (ic_up.received < ic_up.size) {
        return CUDA_SUCCESS;
    }
    res = ic_store();
    ic_upload_reset();
    return res;
}

int vgcd_image_frame(struct vgcd_session *s, unsigned opcode, const void *payload,
                     size_t len, struct vgc_wr *w)
{
    struct vgc_rd r;
    uint8_t hash[32];
    uint64_t size, offset = 0, part_len = 0;
    const void *part = NULL;
    CUresult res;

    vgc_rd_init(&r, payload, len);
    vgc_rd_bytes(&r, hash, sizeof(hash));
    size = vgc_rd_u64(&r);
    if (opcode == VGC_OP_IMAGE_PUT) {
        offset = vgc_rd_u64(&r);
        part = vgc_rd_blob(&r, &part_len, VGC_IMAGE_PART);
    }
    if (!vgc_rd_done(&r)) {
        return vgcd_violation(s, "malformed image request");
    }
    if (opcode == VGC_OP_IMAGE_QUERY) {
        res = ic_held(hash, size) ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
    } else {
        res = ic_put(s, hash, size, offset, part, part_len);
    }
    vgc_wr_i32(w, res);
    return 0;
}

CUresult vgcd_image_resolve(const void *data, size_t len, const void **image, size_t *size)
{
    const uint8_t *p = data;
    char path[PATH_MAX + 80];
    uint64_t want;
    struct stat st;
    void *m;
    int fd;

    if (!p || len != VGC_IMAGE_REF_SIZE ||
        memcmp(p, VGC_IMAGE_REF_MAGIC, VGC_IMAGE_REF_MAGIC_LEN)) {
        return CUDA_ERROR_NOT_FOUND;
    }
    memcpy(&want, p + VGC_IMAGE_REF_MAGIC_LEN + 32, 8);
    ic_path(path, sizeof(path), p + VGC_IMAGE_REF_MAGIC_LEN);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != want || !want) {
        close(fd);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    m = mmap(NULL, (size_t)want, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *image = m;
    *size = (size_t)want;
    return CUDA_SUCCESS;
}

void vgcd_image_unmap(const void *image, size_t size)
{
    munmap((void *)image, size);
}

void vgcd_image_cache_remove(void)
{
    const char *env = getenv("VGCD_IMAGE_CACHE_DIR");
    const char *dir = vgcd_image_cache_dir();
    DIR *d;
    struct dirent *e;

    /* A directory the operator named is theirs to keep across restarts. */
    if (env && *env) {
        return;
    }
    d = opendir(dir);
    if (!d) {
        return;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
    rmdir(dir);
}
