/*
 * cfssim worker: runs the processes of one scenario session as real processes and threads.
 *
 * One instance per session (the parent starts it in a new session, so it owns an autogroup).
 * It reads its processes from stdin, one line each, then a line "end":
 *
 *     proc <index> <threads> <start_ns> <ntokens> <token>...
 *
 * Tokens are the compiled program (cfssim/real/worker.py, `encode_program`):
 *     1 ns   run: burn CPU until this thread's CLOCK_THREAD_CPUTIME_ID advanced by ns (-1: forever),
 *            quietly; a run that a sleep follows is settled after that sleep: see `burn`
 *     2 ns   sleep (clock_nanosleep, CLOCK_MONOTONIC)
 *     3 b    alloc: mmap b bytes and touch every page
 *     4 b    free: unmap the b most recently allocated bytes (-1: all)
 *     5 c    exit: end this thread with code c (the process exits with its last thread's code)
 *     6 r n  loop: repeat the next n tokens r times (-1: forever)
 *     7 p m  timer: sleep until this thread's next timer expiry, period p ns, mode m (0 absolute,
 *            1 relative) — `Timer` and `TimerClock` in cfssim/scenario.py and cfssim/behaviour.py
 *
 * It forks one child per process; each child starts its threads (the main thread is thread 0),
 * and every thread reports "tid <proc> <thread> <tid> <pid>" on stdout. The parent places the tids
 * in cgroups and sets their attributes, then writes 8 bytes (a CLOCK_MONOTONIC instant t0, ns) per
 * thread into the shared "go" pipe (fd GO_FD, argv[2]): each thread reads its 8 bytes and sleeps until
 * t0 + start_ns, so all threads of the scenario start from one barrier.
 *
 * A thread that ends copies /proc/thread-self/{schedstat,sched} to <statdir>/<proc>.<thread>.*
 * and reports "done <proc> <thread> <t_ns> <code>". The session process reaps its children and
 * reports "exit <proc> <pid> <wait status> <t_ns>". Every line is one write(2) below PIPE_BUF.
 * Children die with the session process, which dies with the parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
enum { OP_RUN = 1, OP_SLEEP, OP_ALLOC, OP_FREE, OP_EXIT, OP_LOOP, OP_TIMER };

struct proc {
    int index, threads;
    int64_t start_ns;
    int ntokens;
    int64_t *tokens;
    pid_t pid;
};

struct region { char *addr; size_t len; };

/* A thread's periodic timer (CLOCK_MONOTONIC ns): started with the thread, last expired at expiry. */
struct timer { int64_t start, expiry; };

static const char *statdir;
static int go_fd;
static struct proc *current;          /* in a child: the process it runs */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;
static size_t nregions, cap_regions;
static int live_threads;
static volatile uint64_t sink;

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (write(STDOUT_FILENO, buf, (size_t)n) < 0) _exit(120);
}

/* A few dozen ns of pure computation: the body of every busy loop. */
static inline void churn(void) {
    uint64_t x = sink;
    for (int i = 0; i < 32; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = x;
}

/* Spins until ns of wall time (CLOCK_MONOTONIC) have passed. That clock is read through the
 * vDSO, so the loop makes no system call. */
static void spin_wall(int64_t ns) {
    int64_t until = now_ns(CLOCK_MONOTONIC) + ns;
    do churn(); while (now_ns(CLOCK_MONOTONIC) < until);
}

/* A jump of the wall clock between two reads of a spinning thread longer than this (ns) is time
 * the thread spent off its CPU (another task ran); shorter ones are interrupts and VM exits, which
 * a kernel without CONFIG_IRQ_TIME_ACCOUNTING (this one) charges to the thread. */
#define OFF_CPU_NS 200000

/* Spins until ns of on-CPU time have passed by the wall clock (vDSO, no system call): jumps
 * longer than OFF_CPU_NS are not counted. */
static void spin_on_cpu(int64_t ns) {
    int64_t last = now_ns(CLOCK_MONOTONIC);
    while (ns > 0) {
        churn();
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (now - last < OFF_CPU_NS) ns -= now - last;
        last = now;
    }
}

/* A run that ended without reading the CPU clock (a sleep followed): where it started on the
 * thread's CPU clock and what it asked for; and the CPU time (ns, signed) the runs so far still owe
 * — or, negative, got in excess — which the next run adds to its demand. */
static __thread int64_t unsettled_start = -1, unsettled_demand, owed;

/* Settles an unsettled run: called by the sleep or timer wait that follows it (`blocks_at`), as
 * the thread wakes, when a read of the CPU clock (a system call, so update_curr()) cannot end a
 * slice that is due. */
static void settle(void) {
    if (unsettled_start < 0) return;
    owed += unsettled_demand - (now_ns(CLOCK_THREAD_CPUTIME_ID) - unsettled_start);
    unsettled_start = -1;
}

/* run: burns until this thread's CPU clock advanced by ns (ns < 0: forever, reading no clock).
 *
 * Without perturbing the scheduler it measures: CLOCK_THREAD_CPUTIME_ID is a system call on x86
 * (not served by the vDSO), and every system call runs update_curr(), which ends an EEVDF slice
 * the moment it is due rather than at the next tick; polling it turned 4 ms timeslices into
 * 1.4 ms ones (docs/kernel-facts.md#syscall-ends-slice). A thread gets no more CPU than the wall
 * time that passes, so it spins on the wall clock for the remaining demand and only then reads
 * its CPU clock: that check ends the run (a few µs past its demand) or leaves the CPU time it
 * lost to preemption, steal and interrupts as a smaller remainder.
 *
 * A run that a sleep follows (`blocks_next`) must not end with that read either: a slice that has
 * expired would be ended by it and the thread preempted just before it could sleep, to finish
 * a slice later — a program that computes and then sleeps makes no such call (the ticker twin:
 * docs/kernel-facts.md#ticker-among-hogs). Such a run ends by the wall clock alone, not counting
 * off-CPU jumps (`spin_on_cpu`); the CPU clock is read as the thread wakes from the sleep
 * (`settle`) and the difference, either way, goes into its next run. The CPU time of a repeated
 * run/sleep is thus exact but for its last run; each run is within the interrupts it could not
 * tell from preemptions. */
static void burn(int64_t ns, int blocks_next) {
    if (ns < 0)
        for (;;) churn();
    ns += owed;
    owed = ns < 0 ? ns : 0;
    if (ns < 0) ns = 0;
    int64_t start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    if (blocks_next) {
        spin_on_cpu(ns);
        unsettled_start = start;
        unsettled_demand = ns;
        return;
    }
    int64_t end = start + ns;
    for (int64_t left = ns; left > 0; left = end - now_ns(CLOCK_THREAD_CPUTIME_ID))
        spin_wall(left);
}

static void nap(int64_t ns) {
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {}
    settle();
}

static void sleep_until(int64_t t) {
    struct timespec at = {t / 1000000000, t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {}
}

/* One period after the last expiry; if that has passed, the first boundary start + k*period at or
 * after now (absolute: missed periods are skipped) or now (relative). Sleeps only if in the future. */
static void timer_wait(struct timer *tm, int64_t period, int64_t relative) {
    int64_t now = now_ns(CLOCK_MONOTONIC), expiry = tm->expiry + period;
    if (expiry < now)
        expiry = relative ? now : tm->start + (now - tm->start + period - 1) / period * period;
    tm->expiry = expiry;
    if (expiry > now) sleep_until(expiry);
    settle();
}

static void alloc(int64_t bytes) {
    size_t len = ((size_t)bytes + PAGE - 1) / PAGE * PAGE;
    if (len == 0) return;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { say("error %d mmap %s\n", current->index, strerror(errno)); _exit(121); }
    pthread_mutex_lock(&mem_lock);
    if (nregions == cap_regions) {
        cap_regions = cap_regions ? 2 * cap_regions : 16;
        regions = realloc(regions, cap_regions * sizeof *regions);
    }
    regions[nregions++] = (struct region){p, len};
    pthread_mutex_unlock(&mem_lock);
    for (size_t off = 0; off < len; off += PAGE) p[off] = 1;   /* fault and charge every page */
}

static void release(int64_t bytes) {
    size_t want = bytes < 0 ? SIZE_MAX : ((size_t)bytes + PAGE - 1) / PAGE * PAGE;
    pthread_mutex_lock(&mem_lock);
    while (want > 0 && nregions > 0) {
        struct region *r = &regions[nregions - 1];
        size_t cut = r->len < want ? r->len : want;
        munmap(r->addr + r->len - cut, cut);
        r->len -= cut;
        want -= cut;
        if (r->len == 0) nregions--;
    }
    pthread_mutex_unlock(&mem_lock);
}

/* Whether the step at token j (-1: none) puts the thread to sleep first thing: a sleep, a timer
 * wait, or a loop that runs at least once and whose body starts with one. */
static int blocks_at(const int64_t *tok, int j) {
    if (j < 0) return 0;
    if (tok[j] == OP_SLEEP || tok[j] == OP_TIMER) return 1;
    return tok[j] == OP_LOOP && tok[j + 1] != 0 && tok[j + 2] > 0 && blocks_at(tok, j + 3);
}

/* Runs tokens [i, end) with the thread's timer tm; `after` is the token that runs next once they
 * are done (-1: none). Returns 1 with *code set when an exit step ran. */
static int execute(const int64_t *tok, int i, int end, int after, struct timer *tm, int *code) {
    while (i < end) {
        int64_t op = tok[i], arg = tok[i + 1];
        switch (op) {
        case OP_RUN: burn(arg, blocks_at(tok, i + 2 < end ? i + 2 : after)); i += 2; break;
        case OP_SLEEP: nap(arg); i += 2; break;
        case OP_ALLOC: alloc(arg); i += 2; break;
        case OP_FREE: release(arg); i += 2; break;
        case OP_TIMER: timer_wait(tm, arg, tok[i + 2]); i += 3; break;
        case OP_EXIT: *code = (int)arg; return 1;
        case OP_LOOP: {
            int body = (int)tok[i + 2], next = i + 3 + body < end ? i + 3 + body : after;
            for (int64_t r = 0; arg < 0 || r < arg; r++)
                if (execute(tok, i + 3, i + 3 + body, arg >= 0 && r == arg - 1 ? next : i + 3,
                            tm, code))
                    return 1;
            i += 3 + body;
            break;
        }
        default: say("error %d bad token %lld\n", current->index, (long long)op); _exit(122);
        }
    }
    return 0;
}

static void copy_file(const char *src, const char *dst) {
    char buf[8192];
    int in = open(src, O_RDONLY);
    if (in < 0) return;
    ssize_t n = read(in, buf, sizeof buf);
    close(in);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) return;
    if (n > 0 && write(out, buf, (size_t)n) < 0) {}
    close(out);
}

static void *thread_main(void *arg) {
    int t = (int)(intptr_t)arg;
    say("tid %d %d %ld %d\n", current->index, t, (long)syscall(SYS_gettid), (int)getpid());
    int64_t t0;
    if (read(go_fd, &t0, sizeof t0) != sizeof t0) _exit(123);   /* the barrier */
    struct timer tm = {t0 + current->start_ns, t0 + current->start_ns};
    sleep_until(tm.start);
    int code = 0;
    execute(current->tokens, 0, current->ntokens, -1, &tm, &code);
    char src[64], dst[4096];
    const char *files[] = {"schedstat", "sched"};
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "/proc/thread-self/%s", files[k]);
        snprintf(dst, sizeof dst, "%s/%d.%d.%s", statdir, current->index, t, files[k]);
        copy_file(src, dst);
    }
    say("done %d %d %lld %d\n", current->index, t, (long long)now_ns(CLOCK_MONOTONIC), code);
    if (__atomic_sub_fetch(&live_threads, 1, __ATOMIC_SEQ_CST) == 0) _exit(code);
    pthread_exit(NULL);
}

static void run_child(struct proc *p, pid_t session) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != session) _exit(124);
    current = p;
    live_threads = p->threads;
    for (int t = 1; t < p->threads; t++) {
        pthread_t th;
        if (pthread_create(&th, NULL, thread_main, (void *)(intptr_t)t) != 0) _exit(125);
    }
    thread_main((void *)0);
}

static struct proc *read_procs(int *count) {
    struct proc *procs = NULL;
    int n = 0;
    char word[16];
    while (scanf("%15s", word) == 1 && strcmp(word, "end") != 0) {
        procs = realloc(procs, (size_t)(n + 1) * sizeof *procs);
        struct proc *p = &procs[n++];
        long long start;
        if (strcmp(word, "proc") != 0 || scanf("%d %d %lld %d", &p->index, &p->threads, &start, &p->ntokens) != 4) {
            fprintf(stderr, "cfssim worker: bad input near '%s'\n", word);
            exit(2);
        }
        p->start_ns = start;
        p->tokens = calloc((size_t)p->ntokens + 3, sizeof *p->tokens);
        for (int k = 0; k < p->ntokens; k++) {
            long long v;
            if (scanf("%lld", &v) != 1) { fprintf(stderr, "cfssim worker: short program\n"); exit(2); }
            p->tokens[k] = v;
        }
    }
    *count = n;
    return procs;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: cfssim-worker STATDIR GO_FD < processes\n"); return 2; }
    statdir = argv[1];
    go_fd = atoi(argv[2]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int n;
    struct proc *procs = read_procs(&n);
    pid_t session = getpid();
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 3; }
        if (pid == 0) run_child(&procs[k], session);
        procs[k].pid = pid;
    }
    close(go_fd);
    for (int left = n; left > 0;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) { if (errno == EINTR) continue; break; }
        for (int k = 0; k < n; k++)
            if (procs[k].pid == pid) {
                say("exit %d %d %d %lld\n", procs[k].index, pid, status, (long long)now_ns(CLOCK_MONOTONIC));
                left--;
            }
    }
    return 0;
}
