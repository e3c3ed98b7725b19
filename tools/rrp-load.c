// SPDX-License-Identifier: GPL-2.0
/*
 * rrp-load: real IPI and scheduling load for the guest tests and benchmarks of rust_resched_probe.
 *
 *   rrp-load pingpong CPU_A CPU_B N   two processes pinned to CPU_A and CPU_B bounce a byte through
 *                                     pipes N times: remote wakeups to idle CPUs, queued on their
 *                                     wakelists (call-function-single IPIs)
 *   rrp-load busypong CPU_A CPU_B N   the same with a SCHED_IDLE spinner on both CPUs: the targets are
 *                                     busy, so each wakeup preempts remotely (reschedule IPIs)
 *   rrp-load switch CPU N             the same with both processes on one CPU: context switches only
 *   rrp-load renice CPU_A CPU_B N     a spinner on CPU_B (beside a SCHED_IDLE one), and from CPU_A its nice
 *                                     raised to 1 and set back to 0 N times: lowering the priority of a
 *                                     task running on another CPU reschedules that CPU (a reschedule IPI
 *                                     from CPU_A to CPU_B), whatever the cache topology
 *   rrp-load membarrier N             threads spin on every other online CPU while CPU 0 issues N
 *                                     MEMBARRIER_CMD_PRIVATE_EXPEDITED calls: call-function IPIs
 *   rrp-load shootdown CPU_A CPU_B N  a thread spins on CPU_B while CPU_A maps, touches and unmaps a page
 *                                     of the same process N times: each unmap flushes CPU_B's TLB
 *                                     (a call-function IPI running flush_tlb_func on x86)
 *
 * Pacing for long runs on slow machines (make stress under emulation), from the environment:
 *   RRP_LOAD_DUTY=P       spinners spin P% of each 10 ms and sleep the rest (default 100: always)
 *   RRP_LOAD_PAUSE_US=U   pingpong and membarrier sleep U microseconds after each operation (default 0)
 *
 * Each prints one line: `<mode> ops=N ns_per_op=X`. For the preempt-notifier tests, these print
 * `done` when their work is over and then wait for a signal, so that their counts can be read; spin
 * and sleeper first print `start` and wait for a line on stdin:
 *
 *   rrp-load spin CPU MS              spin on CPU for MS milliseconds
 *   rrp-load sleeper N USEC           sleep USEC microseconds N times
 *   rrp-load migrate N                move itself to the next online CPU N times
 *   rrp-load tree                     start 4 threads and fork 2 children, print `ready`, and let them
 *                                     all exit when a line arrives on stdin
 *   rrp-load churn N ATTACH_FILE      fork N children in turn; each writes `attach` to ATTACH_FILE
 *                                     (waiting while the module is away), runs a thread and exits;
 *                                     exits 1 if any child failed
 *
 * For the race tests (issue 21):
 *
 *   rrp-load notifier DIR SECONDS     what KVM does to a vCPU thread: two threads churn their own preempt
 *                                     notifiers in the test module qemu/modules/rrp_races.c (DIR is its
 *                                     debugfs folder) while two others wake them through DIR/wake and a
 *                                     fifth signals them, for SECONDS; prints `notifier rounds=R
 *                                     wakeups=W woken=K signals=S` (the module's stats and the signals)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "rrp-load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(const char *mode, long n, long long ns)
{
	printf("%s ops=%ld ns_per_op=%.1f\n", mode, n, n ? (double)ns / n : 0.0);
}

static long env_long(const char *name, long dflt, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return dflt;
	x = strtol(v, &end, 10);
	if (*end || x < lo || x > hi) {
		fprintf(stderr, "rrp-load: %s must be a number from %ld to %ld\n", name, lo, hi);
		exit(2);
	}
	return x;
}

/* One 10 ms period of a spinner: spin RRP_LOAD_DUTY% of it, sleep the rest (100: just spin). */
static void spin_period(void)
{
	static long duty = -1;
	long long end;

	if (duty < 0)
		duty = env_long("RRP_LOAD_DUTY", 100, 1, 100);
	end = now_ns() + duty * 100000LL;
	while (now_ns() < end)
		;
	if (duty < 100)
		usleep((100 - duty) * 100);
}

/* Sleep RRP_LOAD_PAUSE_US after an operation, if set. */
static void pause_op(void)
{
	static long pause = -1;

	if (pause < 0)
		pause = env_long("RRP_LOAD_PAUSE_US", 0, 0, 10000000);
	if (pause)
		usleep(pause);
}

/* A SCHED_IDLE process spinning on `cpu` until killed: keeps the CPU busy but always preemptible. */
static pid_t idle_spinner(int cpu)
{
	struct sched_param sp = { 0 };
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(cpu);
		if (sched_setscheduler(0, SCHED_IDLE, &sp))
			die("sched_setscheduler(SCHED_IDLE)");
		for (;;)
			spin_period();
	}
	return pid;
}

static int pingpong(const char *mode, int cpu_a, int cpu_b, long n, int busy)
{
	int ab[2], ba[2];
	char c = 'x';
	long long t0;
	pid_t child, spin_a = 0, spin_b = 0;

	if (busy) {
		spin_a = idle_spinner(cpu_a);
		spin_b = idle_spinner(cpu_b);
		usleep(20000);
	}

	if (pipe(ab) || pipe(ba))
		die("pipe");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		pin(cpu_b);
		for (long i = 0; i < n; i++) {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	pin(cpu_a);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			die("pipe ping-pong");
		pause_op();
	}
	report(mode, n, now_ns() - t0);
	int status;
	waitpid(child, &status, 0);
	if (busy) {
		kill(spin_a, SIGKILL);
		kill(spin_b, SIGKILL);
		waitpid(spin_a, NULL, 0);
		waitpid(spin_b, NULL, 0);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static atomic_int stop, ready;

static void *spinner(void *arg)
{
	int cpu = (int)(long)arg;

	pin(cpu);
	while (sched_getcpu() != cpu)
		;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		spin_period();
	return NULL;
}

static int membarrier_load(long n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t threads[64];
	long nthreads = 0;
	long long t0;

	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		die("membarrier register");
	pin(0);
	for (long cpu = 1; cpu < cpus && nthreads < 64; cpu++) {
		if (pthread_create(&threads[nthreads], NULL, spinner, (void *)cpu))
			die("pthread_create");
		nthreads++;
	}
	while (atomic_load(&ready) < nthreads) /* every spinner runs on its CPU */
		usleep(1000);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
			die("membarrier");
		pause_op();
	}
	report("membarrier", n, now_ns() - t0);
	atomic_store(&stop, 1);
	for (long i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	return 0;
}

static int shootdown(int cpu_a, int cpu_b, long n)
{
	pthread_t thread;
	long long t0;

	pin(cpu_a);
	if (pthread_create(&thread, NULL, spinner, (void *)(long)cpu_b))
		die("pthread_create");
	while (atomic_load(&ready) < 1) /* the spinner runs on CPU_B, in this process's address space */
		usleep(1000);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		if (munmap((void *)p, 4096))
			die("munmap");
		pause_op();
	}
	report("shootdown", n, now_ns() - t0);
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	return 0;
}

static void done_then_wait(void)
{
	printf("done\n");
	for (;;)
		pause();
}

/* Prints `start` and waits for a line on stdin, so that counts can be read before the work. */
static void start_on_go(void)
{
	char line[64];

	printf("start\n");
	if (!fgets(line, sizeof(line), stdin))
		exit(1);
}

static int spin(int cpu, long ms)
{
	long long end;

	pin(cpu);
	start_on_go();
	end = now_ns() + ms * 1000000LL;
	while (now_ns() < end)
		;
	done_then_wait();
	return 0;
}

static int sleeper(long n, long usec)
{
	start_on_go();
	for (long i = 0; i < n; i++)
		usleep(usec);
	done_then_wait();
	return 0;
}

static int migrate(long n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	for (long i = 0; i < n; i++) {
		pin((int)(i % cpus));
		for (volatile int j = 0; j < 10000; j++)
			;
	}
	done_then_wait();
	return 0;
}

static int gate[2];

static void *tree_thread(void *arg)
{
	char c;

	(void)arg;
	while (read(gate[0], &c, 1) > 0)
		;
	return NULL;
}

static int tree(void)
{
	pthread_t threads[4];
	pid_t children[2];
	char line[64];

	if (pipe(gate))
		die("pipe");
	for (int i = 0; i < 2; i++) {
		children[i] = fork();
		if (children[i] < 0)
			die("fork");
		if (children[i] == 0) {
			char c;

			close(gate[1]);
			while (read(gate[0], &c, 1) > 0)
				;
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++)
		if (pthread_create(&threads[i], NULL, tree_thread, NULL))
			die("pthread_create");
	printf("ready\n");
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
	close(gate[1]);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 2; i++)
		waitpid(children[i], NULL, 0);
	return 0;
}

static void *nothing(void *arg)
{
	return arg;
}

/* N children in turn: each attaches, starts and joins a thread (attached through the fork hook), exits. */
/* Writes `attach` to `path`; while the file is away (the module is being unloaded or loaded again:
 * ENOENT, ENODEV, ENXIO), waits and tries again, for up to 20 s. 0, or 1 after any other error. */
static int attach_retrying(const char *path, int *waited)
{
	for (int tries = 0; tries < 4000; tries++) {
		int fd = open(path, O_WRONLY);

		if (fd >= 0) {
			ssize_t w = write(fd, "attach", 6);
			int e = errno;

			close(fd);
			if (w == 6)
				return 0;
			errno = e;
		}
		if (errno != ENOENT && errno != ENODEV && errno != ENXIO)
			return 1;
		*waited = 1;
		usleep(5000);
	}
	return 1;
}

static int churn(long n, const char *attach)
{
	long failed = 0, waited = 0;

	for (long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			pthread_t t;
			int w = 0;

			if (attach_retrying(attach, &w))
				_exit(1);
			if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
				_exit(2);
			_exit(w ? 3 : 0);
		}
		int status;

		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    (WEXITSTATUS(status) && WEXITSTATUS(status) != 3))
			failed++;
		else if (WEXITSTATUS(status) == 3)
			waited++;
	}
	printf("churn ops=%ld failed=%ld waited=%ld\n", n, failed, waited);
	return failed ? 1 : 0;
}

/*
 * prio_changed_fair() reschedules the CPU of a running task whose priority drops, when another fair task
 * is queued there (the SCHED_IDLE spinner): resched_curr() on a remote run queue, one reschedule IPI
 * unless the request is still pending (hence a pause after each). Raising it back asks for nothing.
 */
static int renice(int cpu_a, int cpu_b, long n)
{
	pid_t rival = idle_spinner(cpu_b);
	pid_t pid = fork();
	long long t0;
	long i;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(cpu_b);
		for (;;)
			spin_period();
	}
	pin(cpu_a);
	usleep(20000);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if (setpriority(PRIO_PROCESS, pid, 1) || setpriority(PRIO_PROCESS, pid, 0))
			die("setpriority");
		/* Let CPU_B take the IPI and reschedule: a request while the last is pending sends none. */
		usleep(200);
		pause_op();
	}
	report("renice", n, now_ns() - t0);
	kill(pid, SIGKILL);
	kill(rival, SIGKILL);
	waitpid(pid, NULL, 0);
	waitpid(rival, NULL, 0);
	return 0;
}

/* --- notifier: KVM's notifier churn against wakers --------------------------------------------------- */

static atomic_int churn_stop;
static atomic_long signals;
static const char *churn_dir;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals, 1);
}

static int open_in(const char *dir, const char *name, int flags)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags);
}

static void *churner(void *arg)
{
	int fd = open_in(churn_dir, "churn", O_WRONLY);

	pin((int)(long)arg);
	if (fd < 0)
		die("open churn");
	while (!atomic_load(&churn_stop))
		if (write(fd, "2000", 4) < 0 && errno != EINTR)
			die("write churn");
	close(fd);
	return NULL;
}

static void *waker(void *arg)
{
	int fd = open_in(churn_dir, "wake", O_WRONLY);

	pin((int)(long)arg);
	if (fd < 0)
		die("open wake");
	while (!atomic_load(&churn_stop))
		if (write(fd, "1", 1) < 0)
			die("write wake");
	close(fd);
	return NULL;
}

static int notifier(const char *dir, long seconds)
{
	struct sigaction sa = { .sa_handler = on_signal };
	pthread_t churners[2], wakers[2];
	long long end = now_ns() + seconds * 1000000000LL;
	char stats[128] = "";
	int fd;

	churn_dir = dir;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction");
	for (long i = 0; i < 2; i++)
		if (pthread_create(&churners[i], NULL, churner, (void *)(1 + i)) ||
		    pthread_create(&wakers[i], NULL, waker, (void *)(i ? 3L : 0L)))
			die("pthread_create");
	while (now_ns() < end) {
		for (int i = 0; i < 2; i++)
			pthread_kill(churners[i], SIGUSR1);
		usleep(20000);
	}
	atomic_store(&churn_stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_kill(churners[i], SIGUSR1);
		pthread_join(churners[i], NULL);
		pthread_join(wakers[i], NULL);
	}
	fd = open_in(dir, "stats", O_RDONLY);
	if (fd < 0 || read(fd, stats, sizeof(stats) - 1) < 0)
		die("read stats");
	close(fd);
	stats[strcspn(stats, "\n")] = 0;
	printf("notifier %s signals=%ld (handled)\n", stats, atomic_load(&signals));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "pingpong"))
		return pingpong("pingpong", atoi(argv[2]), atoi(argv[3]), atol(argv[4]), 0);
	if (argc == 5 && !strcmp(argv[1], "busypong"))
		return pingpong("busypong", atoi(argv[2]), atoi(argv[3]), atol(argv[4]), 1);
	if (argc == 5 && !strcmp(argv[1], "renice"))
		return renice(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "switch"))
		return pingpong("switch", atoi(argv[2]), atoi(argv[2]), atol(argv[3]), 0);
	if (argc == 3 && !strcmp(argv[1], "membarrier"))
		return membarrier_load(atol(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "shootdown"))
		return shootdown(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "spin"))
		return spin(atoi(argv[2]), atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "sleeper"))
		return sleeper(atol(argv[2]), atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "migrate"))
		return migrate(atol(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "tree"))
		return tree();
	if (argc == 4 && !strcmp(argv[1], "churn"))
		return churn(atol(argv[2]), argv[3]);
	if (argc == 4 && !strcmp(argv[1], "notifier"))
		return notifier(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: rrp-load pingpong|busypong|renice|shootdown CPU_A CPU_B N | switch CPU N | membarrier N |\n"
		"       spin CPU MS | sleeper N USEC | migrate N | tree | churn N ATTACH_FILE |\n"
		"       notifier DIR SECONDS\n");
	return 2;
}
