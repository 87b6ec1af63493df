/*
 * fuzz_ptx.c - libFuzzer target for the cpu executor's PTX reading: the
 * load-time module scan (cpu_ptx_scan) and the decoder
 * (ptx_module_parse), which share the scanner of ptx_lex.c.  PTX comes
 * from the guest, so neither may crash, hang or leak on any input.
 *
 * Where both accept a kernel, the launch buffer laid out from the scan's
 * parameter offsets must be the size the decoded body reads.
 *
 * Seeds: any PTX, e.g. the .ptx files in build/tests/kernels.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "ptx_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cpu_image img = { 0 };
    struct ptx_module *m = NULL;
    char err[200];
    char *text;

    if (size > (1u << 20)) {
        return 0;
    }
    /* As cpu_image.c keeps it: a copy, NUL-terminated (NULs inside end
     * the text for the scanner). */
    text = malloc(size + 1);
    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = 0;
    img.ptx = text;
    img.ptx_len = size;
    if (cpu_ptx_scan(&img) == CUDA_SUCCESS &&
        ptx_module_parse(text, size, &m, err, sizeof(err)) == CUDA_SUCCESS) {
        for (size_t i = 0; i < img.nkernels; i++) {
            const struct cpu_kernel_desc *k = &img.kernels[i];
            const struct ptx_func *f = ptx_module_find(m, k->name);
            uint32_t end = 0;
            size_t j, same = 0;

            for (j = 0; j < img.nkernels; j++) {
                same += strcmp(img.kernels[j].name, k->name) == 0;
            }
            if (!f || same != 1 || k->nparams < 0) {
                continue;
            }
            if (k->nparams > 0) {
                end = k->params[k->nparams - 1].offset +
                      k->params[k->nparams - 1].size;
            }
            if (end != f->param_size) {
                abort();
            }
        }
    }
    ptx_module_free(m);
    cpu_image_free(&img);       /* frees text */
    return 0;
}
