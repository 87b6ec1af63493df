/*
 * test_device.c - device enumeration and driver-level queries.
 *
 * Proves that, before any context exists, the driver answers the queries
 * cudart and frameworks issue at start-up with sane values and the documented
 * error codes:
 *   - calls before cuInit return CUDA_ERROR_NOT_INITIALIZED;
 *   - cuDriverGetVersion >= 13000, cuDeviceGetCount >= 1;
 *   - per device: name (also truncated into a tiny buffer without overflowing),
 *     UUID, total memory, key attributes, PCI bus id <-> device round trip;
 *   - invalid ordinals / attributes are rejected with the documented codes;
 *   - cuGetErrorName / cuGetErrorString map codes to the right strings.
 */
#include "check.h"

#include <ctype.h>

static void check_error_strings(void)
{
    const char *s = NULL;

    CHECK_CU(cuGetErrorName(CUDA_SUCCESS, &s));
    CHECK(s && strcmp(s, "CUDA_SUCCESS") == 0, "cuGetErrorName(CUDA_SUCCESS) is \"%s\"",
          s ? s : "(null)");
    s = NULL;
    CHECK_CU(cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s));
    CHECK(s && strcmp(s, "CUDA_ERROR_INVALID_VALUE") == 0,
          "cuGetErrorName(CUDA_ERROR_INVALID_VALUE) is \"%s\"", s ? s : "(null)");
    s = NULL;
    CHECK_CU(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s));
    CHECK(s && strcmp(s, "CUDA_ERROR_OUT_OF_MEMORY") == 0,
          "cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY) is \"%s\"", s ? s : "(null)");
    s = NULL;
    CHECK_CU(cuGetErrorName(CUDA_ERROR_NOT_SUPPORTED, &s));
    CHECK(s && strcmp(s, "CUDA_ERROR_NOT_SUPPORTED") == 0,
          "cuGetErrorName(CUDA_ERROR_NOT_SUPPORTED) is \"%s\"", s ? s : "(null)");

    s = NULL;
    CHECK_CU(cuGetErrorString(CUDA_SUCCESS, &s));
    CHECK(s && s[0] != '\0', "cuGetErrorString(CUDA_SUCCESS) is non-empty");
    s = NULL;
    CHECK_CU(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s));
    CHECK(s && s[0] != '\0', "cuGetErrorString(CUDA_ERROR_INVALID_VALUE) is non-empty");

    /* cuda.h: "If the error code is not recognized, CUDA_ERROR_INVALID_VALUE
     * will be returned and *pStr will be set to the NULL address." */
    s = "sentinel";
    EXPECT_CU(cuGetErrorName((CUresult)987654, &s), CUDA_ERROR_INVALID_VALUE);
    CHECK(s == NULL, "cuGetErrorName(unknown) sets *pStr to NULL");
    s = "sentinel";
    EXPECT_CU(cuGetErrorString((CUresult)987654, &s), CUDA_ERROR_INVALID_VALUE);
    CHECK(s == NULL, "cuGetErrorString(unknown) sets *pStr to NULL");
}

static void check_one_device(int ordinal)
{
    CUdevice dev = -1;
    itest_ctx("device %d", ordinal);
    if (!CHECK_CU(cuDeviceGet(&dev, ordinal))) {
        itest_ctx("%s", "");
        return;
    }

    /* Name: NUL-terminated inside a generous buffer. */
    char name[256];
    memset(name, 'X', sizeof name);
    CHECK_CU(cuDeviceGetName(name, (int)sizeof name, dev));
    const char *nul = memchr(name, '\0', sizeof name);
    CHECK(nul != NULL, "device name is NUL-terminated within %zu bytes", sizeof name);
    if (!nul)
        name[sizeof name - 1] = '\0';
    CHECK(name[0] != '\0', "device name \"%s\" is non-empty", name);
    int printable = 1;
    for (const char *c = name; *c; c++)
        printable &= isprint((unsigned char)*c) != 0;
    CHECK(printable, "device name is printable ASCII");

    /* Tiny buffer: "name is shortened to the specified len". Whether the
     * truncated result carries a NUL inside len is not spelled out, so accept
     * both, but nothing may be written past len and what is written must be
     * a prefix of the full name. */
    char tiny[16];
    const int tiny_len = 4;
    memset(tiny, '#', sizeof tiny);
    CHECK_CU(cuDeviceGetName(tiny, tiny_len, dev));
    int untouched = 1;
    for (size_t i = (size_t)tiny_len; i < sizeof tiny; i++)
        untouched &= tiny[i] == '#';
    CHECK(untouched, "cuDeviceGetName(len=%d) writes nothing past len", tiny_len);
    size_t tlen = strnlen(tiny, (size_t)tiny_len);
    CHECK(tlen <= strlen(name) && memcmp(tiny, name, tlen) == 0,
          "cuDeviceGetName(len=%d) returns a prefix of \"%s\"", tiny_len, name);

    CUuuid uuid;
    memset(&uuid, 0, sizeof uuid);
    CHECK_CU(cuDeviceGetUuid(&uuid, dev)); /* cuda.h maps this to cuDeviceGetUuid_v2 */
    int nonzero = 0;
    for (size_t i = 0; i < sizeof uuid.bytes; i++)
        nonzero |= uuid.bytes[i] != 0;
    CHECK(nonzero, "cuDeviceGetUuid returns a non-zero UUID");

    size_t total = 0;
    CHECK_CU(cuDeviceTotalMem(&total, dev));
    CHECK(total > 0, "cuDeviceTotalMem = %zu bytes > 0", total);

    int v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    CHECK(v >= 1, "compute capability major = %d >= 1", v);
    v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    CHECK(v >= 0 && v <= 9, "compute capability minor = %d in [0,9]", v);
    v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev));
    CHECK_EQ(v, 32, "warp size");
    v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev));
    CHECK(v >= 64, "max threads per block = %d >= 64", v);
    v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
    CHECK(v >= 1, "multiprocessor count = %d >= 1", v);
    v = -1;
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, dev));
    CHECK_EQ(v, 1, "unified addressing");

    int pci_domain = -1, pci_bus = -1, pci_dev = -1;
    CHECK_CU(cuDeviceGetAttribute(&pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev));
    CHECK_CU(cuDeviceGetAttribute(&pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev));
    CHECK_CU(cuDeviceGetAttribute(&pci_dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev));
    CHECK(pci_domain >= 0 && pci_bus >= 0 && pci_bus <= 0xff && pci_dev >= 0 && pci_dev <= 0x1f,
          "PCI domain/bus/device = %x/%x/%x in range", pci_domain, pci_bus, pci_dev);

    /* Bus id string: "[domain]:[bus]:[device].[function]", hex; cuda.h says
     * 13 characters including the NUL are enough. */
    char busid[64];
    memset(busid, 0, sizeof busid);
    if (CHECK_CU(cuDeviceGetPCIBusId(busid, (int)sizeof busid, dev))) {
        unsigned d = 0, b = 0, s = 0, f = 0;
        int n = sscanf(busid, "%x:%x:%x.%x", &d, &b, &s, &f);
        CHECK_EQ(n, 4, "PCI bus id \"%s\" parses as domain:bus:device.function", busid);
        if (n == 4)
            CHECK((int)d == pci_domain && (int)b == pci_bus && (int)s == pci_dev,
                  "PCI bus id \"%s\" matches attributes %x:%x:%x", busid, pci_domain, pci_bus,
                  pci_dev);
        CUdevice back = -1;
        CHECK_CU(cuDeviceGetByPCIBusId(&back, busid));
        CHECK_EQ(back, dev, "cuDeviceGetByPCIBusId(\"%s\") round trip", busid);
    }

    /* An attribute id far outside the enum. */
    v = 12345;
    EXPECT_CU(cuDeviceGetAttribute(&v, (CUdevice_attribute)100000, dev),
              CUDA_ERROR_INVALID_VALUE);
    itest_ctx("%s", "");
}

int main(void)
{
    itest_watchdog();

    /* Before cuInit every device call must say NOT_INITIALIZED. NVIDIA's
     * link stub answers CUDA_ERROR_STUB_LIBRARY to everything: let cuInit
     * bail out with a clear message in that case. */
    int count = -1;
    CUresult pre = cuDeviceGetCount(&count);
    if (pre == CUDA_ERROR_STUB_LIBRARY)
        itest_init_driver(); /* does not return */

    /* Error strings do not need cuInit either. */
    check_error_strings();

    CHECK_EQ(pre, CUDA_ERROR_NOT_INITIALIZED, "cuDeviceGetCount before cuInit -> "
                                              "CUDA_ERROR_NOT_INITIALIZED");

    itest_init_driver();
    /* cuInit is idempotent. */
    CHECK_CU(cuInit(0));

    int ver = 0;
    CHECK_CU(cuDriverGetVersion(&ver));
    CHECK(ver >= 13000, "cuDriverGetVersion = %d >= 13000", ver);

    count = 0;
    CHECK_CU(cuDeviceGetCount(&count));
    if (!CHECK(count >= 1, "cuDeviceGetCount = %d >= 1", count))
        itest_bail("no devices");

    for (int i = 0; i < count; i++)
        check_one_device(i);

    CUdevice dev = 0;
    EXPECT_CU(cuDeviceGet(&dev, count), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_CU(cuDeviceGet(&dev, -1), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_CU(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
    int v = 0;
    EXPECT_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, (CUdevice)(count + 100)),
              CUDA_ERROR_INVALID_DEVICE);

    return itest_done();
}
