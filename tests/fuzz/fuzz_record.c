/*
 * fuzz_record.c - libFuzzer target for the registry's record reader
 * (host-backend/registry/record.c).  Records are written into etcd by
 * other hosts, so reading one may not crash, hang or leak on any input;
 * one that is accepted must name the address of its key, hold 1..64
 * devices, and encode back to a record that reads the same.
 *
 * Seeds: tests/fuzz/corpus-record.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char address[] = "tcp:gpu1:7070";
    struct vgc_registry_host h, again;
    char *err = NULL, *text;

    if (!vgc_registry_record_decode((const char *)data, size, address, &h, &err)) {
        if (!err) {
            abort();            /* a refusal always says why */
        }
        free(err);
        return 0;
    }
    if (strcmp(h.address, address) || h.ndevices < 1 || h.ndevices > VGC_REGISTRY_MAX_DEVICES) {
        abort();
    }
    text = vgc_registry_record_encode(&h);
    if (!vgc_registry_record_decode(text, strlen(text), address, &again, &err) ||
        memcmp(&h, &again, sizeof(h))) {
        abort();
    }
    g_free(text);
    return 0;
}
