/*
 * export_tables.h - the driver's private interfaces (cuGetExportTable).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_EXPORT_TABLES_H
#define VGC_EXPORT_TABLES_H

#include <stdint.h>

/*
 * Context @ctx (a handle) is about to be destroyed, reset or released for
 * the last time: run the destructors the runtime registered in its
 * context-local storage, and forget its entries.  Must be called while the
 * context still works, since destructors may free what they allocated in it.
 */
void vgc_cls_context_gone(uint64_t ctx);

#endif /* VGC_EXPORT_TABLES_H */
