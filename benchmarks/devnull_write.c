/*
 * The CPU cost of one write(2) to /dev/null at the sizes rt-app's iorun uses
 * (docs/kernel-facts.md#devnull-write): rt-app's ioload writes its per-thread
 * buffer (mem_buffer_size, 4 MiB by default) to io_device (/dev/null by default)
 * until the event's byte count is written.
 *
 *   gcc -O2 -o /tmp/devnull_write benchmarks/devnull_write.c && /tmp/devnull_write
 *
 * Prints, per size and round, the thread CPU time and the wall time per call (ns).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CALLS 200000L
#define ROUNDS 3

static long long now_ns(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
	static const size_t sizes[] = {1, 4096, 65536, 1 << 20, 4 << 20, 16 << 20};
	const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
	int fd = open("/dev/null", O_WRONLY);
	char *buf = malloc(16 << 20);

	if (fd < 0 || buf == NULL) {
		perror("setup");
		return 1;
	}
	memset(buf, 1, 16 << 20);
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t s = 0; s < nsizes; s++) {
			long long cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
			long long wall0 = now_ns(CLOCK_MONOTONIC);

			for (long i = 0; i < CALLS; i++) {
				if (write(fd, buf, sizes[s]) != (ssize_t)sizes[s]) {
					perror("write");
					return 1;
				}
			}
			printf("size %9zu B  cpu %6.1f ns/call  wall %6.1f ns/call\n", sizes[s],
			       (double)(now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / CALLS,
			       (double)(now_ns(CLOCK_MONOTONIC) - wall0) / CALLS);
		}
	}
	return 0;
}
