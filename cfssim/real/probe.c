/*
 * cfssim calibrate's cost probes (cfssim/real/calibrate.py): what a thread of the twin's worker
 * (worker.c) or of rt-app pays in CPU time, measured on its own CLOCK_THREAD_CPUTIME_ID.
 *
 *     probe fault <mib> <trials>       per trial: mmap <mib> MiB anonymous (MAP_PRIVATE |
 *                                      MAP_ANONYMOUS | MAP_NORESERVE, as worker.c's alloc) and
 *                                      write one byte per 4 KiB page, twice; prints
 *                                      "<first_ns> <second_ns> <pages>" (the first pass faults
 *                                      and zeroes every page and charges it to the memcg, the
 *                                      second is the same loop without faults). Every trial's
 *                                      memory stays mapped until the end: a trial never gets
 *                                      back the pages a previous one freed, recently used and
 *                                      cheaper to fault again (0.94 against 1.2 us per page on
 *                                      the development VM), as a workload's new memory is not.
 *     probe nullwrite <calls> <trials> per trial: <calls> write(2)s of 1 byte to /dev/null (as
 *                                      rt-app's iorun); prints "<cpu_ns> <calls>"
 *
 * It first waits for a line on stdin: the caller moves it into its cgroup meanwhile. Exit status
 * 1 with a message on stderr when a call fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static long long thread_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int fault(long mib, long trials)
{
	size_t len = (size_t)mib << 20;

	for (long trial = 0; trial < trials; trial++) {	/* unmapped at exit */
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		long long pass[2];

		if (p == MAP_FAILED) {
			perror("probe: mmap");
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			long long start = thread_ns();

			for (size_t off = 0; off < len; off += PAGE)
				p[off] = 1;
			pass[i] = thread_ns() - start;
		}
		printf("%lld %lld %zu\n", pass[0], pass[1], len / PAGE);
		fflush(stdout);
	}
	return 0;
}

static int nullwrite(long calls, long trials)
{
	int fd = open("/dev/null", O_WRONLY);
	char byte = 1;

	if (fd < 0) {
		perror("probe: /dev/null");
		return 1;
	}
	for (long trial = 0; trial < trials; trial++) {
		long long start = thread_ns();

		for (long i = 0; i < calls; i++) {
			if (write(fd, &byte, 1) != 1) {
				perror("probe: write");
				return 1;
			}
		}
		printf("%lld %ld\n", thread_ns() - start, calls);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char line[16];

	if (argc != 4 || atol(argv[2]) <= 0 || atol(argv[3]) <= 0) {
		fprintf(stderr, "usage: probe fault|nullwrite <mib|calls> <trials>\n");
		return 2;
	}
	if (fgets(line, sizeof line, stdin) == NULL)
		return 1;
	if (strcmp(argv[1], "fault") == 0)
		return fault(atol(argv[2]), atol(argv[3]));
	if (strcmp(argv[1], "nullwrite") == 0)
		return nullwrite(atol(argv[2]), atol(argv[3]));
	fprintf(stderr, "probe: unknown probe %s\n", argv[1]);
	return 2;
}
