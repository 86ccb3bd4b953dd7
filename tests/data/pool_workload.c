/* The capture round trip's workload: a dispatcher thread wakes a pool of 3 worker threads every
 * 10 ms (one job each, through a condition variable); a job is ~2 ms of CPU time. A periodic
 * thread runs ~1 ms of CPU every 20 ms. Runs for argv[1] seconds (default 2), then exits. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define WORKERS 3
#define NSEC 1000000000LL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static int jobs, done;
static long long end_ns;

static long long now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

static void spin(long long cpu_ns) { /* burn cpu_ns of this thread's CPU time */
    long long until = now(CLOCK_THREAD_CPUTIME_ID) + cpu_ns;
    while (now(CLOCK_THREAD_CPUTIME_ID) < until) {
    }
}

static void sleep_until(long long at) {
    struct timespec ts = {at / NSEC, at % NSEC};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static void *worker(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "worker");
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!jobs && !done)
            pthread_cond_wait(&more, &lock);
        if (done) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        jobs--;
        pthread_mutex_unlock(&lock);
        spin(2000000);
    }
}

static void *periodic(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "periodic");
    for (long long next = now(CLOCK_MONOTONIC); next < end_ns; next += 20000000) {
        sleep_until(next);
        spin(1000000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    pthread_t threads[WORKERS + 1];
    end_ns = now(CLOCK_MONOTONIC) + (long long)(seconds * NSEC);
    prctl(PR_SET_NAME, "dispatcher");
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&threads[i], NULL, worker, NULL);
    pthread_create(&threads[WORKERS], NULL, periodic, NULL);
    for (long long next = now(CLOCK_MONOTONIC); next < end_ns; next += 10000000) {
        sleep_until(next);
        pthread_mutex_lock(&lock);
        jobs += WORKERS;
        pthread_cond_broadcast(&more);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&more);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i <= WORKERS; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
