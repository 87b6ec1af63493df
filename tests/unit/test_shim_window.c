/*
 * test_shim_window.c - what the shim makes of the handshake's device
 * window (guest-driver/libcuda/transport.h, vgc_address_kind): which
 * addresses it takes for device memory, which for host memory, and which
 * it asks the server about.  memcpy.c's is_device() and the pointer
 * attributes of unknown attributes decide by it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>

#include "transport.h"
#include "unit_check.h"

#define BASE 0x200000000000ULL
#define SIZE 0x20000000000ULL

int main(void)
{
    struct vgc_server_info none = { .va_size = 0 };
    struct vgc_server_info whole = { .va_base = BASE, .va_size = SIZE,
                                     .features = VGC_FEATURE_DEVICE_STATUS };
    struct vgc_server_info partial = whole;

    partial.features |= VGC_FEATURE_PARTIAL_WINDOW;

    /* No window (a real driver's addresses): always ask. */
    CHECK(vgc_address_kind(&none, BASE) == VGC_ADDRESS_ASK, "no window, inside");
    CHECK(vgc_address_kind(&none, 0x7f0000001000ULL) == VGC_ADDRESS_ASK, "no window");

    /* A window holding all device memory (the cpu executor's). */
    CHECK(vgc_address_kind(&whole, BASE) == VGC_ADDRESS_DEVICE, "its first byte");
    CHECK(vgc_address_kind(&whole, BASE + SIZE - 1) == VGC_ADDRESS_DEVICE, "its last byte");
    CHECK(vgc_address_kind(&whole, BASE + SIZE) == VGC_ADDRESS_HOST, "just past it: host");
    CHECK(vgc_address_kind(&whole, BASE - 1) == VGC_ADDRESS_HOST, "just below it: host");

    /* A partial one (a cuda executor's with --address-base): inside is
     * still device memory, outside may be too (managed memory, module
     * globals the driver placed), so ask. */
    CHECK(vgc_address_kind(&partial, BASE) == VGC_ADDRESS_DEVICE, "partial, inside");
    CHECK(vgc_address_kind(&partial, BASE + SIZE - 1) == VGC_ADDRESS_DEVICE, "its last byte");
    CHECK(vgc_address_kind(&partial, BASE + SIZE) == VGC_ADDRESS_ASK, "partial, past it: ask");
    CHECK(vgc_address_kind(&partial, 0x7f1234560000ULL) == VGC_ADDRESS_ASK,
          "partial, where the driver puts managed memory: ask");
    CHECK(vgc_address_kind(&partial, 0) == VGC_ADDRESS_ASK, "partial, NULL: ask");
    return unit_done();
}
