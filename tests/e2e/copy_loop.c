/*
 * copy_loop.c - e2e helper: 64 MiB copies in a loop, to be killed.
 *
 *   copy_loop info       print "free F total T" (cuMemGetInfo) and exit
 *   copy_loop [N]        allocate 64 MiB, print "copying", then N (default:
 *                        endless) rounds of 64 MiB HtoD + DtoH, checked;
 *                        prints "done" and exits 0
 *   copy_loop hold FILE  set up, print "holding", wait until FILE exists,
 *                        then allocate and copy 4 KiB (to see how calls
 *                        fail after the device went away or was reset)
 *
 * Exit status: 0 ok, 1 a CUDA call failed (its name and error printed;
 * 3 when that error is CUDA_ERROR_DEVICE_UNAVAILABLE), 2 a data mismatch.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE (64u << 20)

static void check(CUresult r, const char *what)
{
	const char *name = NULL;

	if (r == CUDA_SUCCESS)
		return;
	cuGetErrorName(r, &name);
	printf("%s: %s (%d)\n", what, name ? name : "?", (int)r);
	fflush(stdout);
	exit(r == CUDA_ERROR_DEVICE_UNAVAILABLE ? 3 : 1);
}

int main(int argc, char **argv)
{
	long rounds = -1;
	size_t fr, total;
	unsigned char *h, *back;
	CUdeviceptr d;
	CUcontext ctx;
	CUdevice dev;

	check(cuInit(0), "cuInit");
	check(cuDeviceGet(&dev, 0), "cuDeviceGet");
	check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
	check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
	if (argc > 1 && !strcmp(argv[1], "info")) {
		check(cuMemGetInfo(&fr, &total), "cuMemGetInfo");
		printf("free %zu total %zu\n", fr, total);
		return 0;
	}
	if (argc > 2 && !strcmp(argv[1], "hold")) {
		static unsigned char page[4096];

		printf("holding\n");
		fflush(stdout);
		while (access(argv[2], F_OK))
			usleep(100000);
		check(cuMemAlloc(&d, sizeof(page)), "cuMemAlloc");
		check(cuMemcpyHtoD(d, page, sizeof(page)), "cuMemcpyHtoD");
		printf("done\n");
		return 0;
	}
	if (argc > 1)
		rounds = atol(argv[1]);

	h = malloc(SIZE);
	back = malloc(SIZE);
	if (!h || !back)
		return 1;
	/* memset: a byte loop over 64 MiB takes seconds under TCG. */
	memset(h, 0x5a, SIZE);
	memset(back, 0, SIZE);
	check(cuMemAlloc(&d, SIZE), "cuMemAlloc");
	printf("copying\n");
	fflush(stdout);
	for (long n = 0; rounds < 0 || n < rounds; n++) {
		check(cuMemcpyHtoD(d, h, SIZE), "cuMemcpyHtoD");
		check(cuMemcpyDtoH(back, d, SIZE), "cuMemcpyDtoH");
		if (memcmp(h, back, SIZE)) {
			printf("round %ld: data mismatch\n", n);
			return 2;
		}
		memset(h + (n % 64) * (SIZE / 64), (int)n, SIZE / 64);
	}
	check(cuMemFree(d), "cuMemFree");
	check(cuDevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease");
	printf("done\n");
	return 0;
}
