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
 *   rrp-load membarrier N             threads spin on every other online CPU while CPU 0 issues N
 *                                     MEMBARRIER_CMD_PRIVATE_EXPEDITED calls: call-function IPIs
 *
 * Each prints one line: `<mode> ops=N ns_per_op=X`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
			;
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
		;
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
	}
	report("membarrier", n, now_ns() - t0);
	atomic_store(&stop, 1);
	for (long i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "pingpong"))
		return pingpong("pingpong", atoi(argv[2]), atoi(argv[3]), atol(argv[4]), 0);
	if (argc == 5 && !strcmp(argv[1], "busypong"))
		return pingpong("busypong", atoi(argv[2]), atoi(argv[3]), atol(argv[4]), 1);
	if (argc == 4 && !strcmp(argv[1], "switch"))
		return pingpong("switch", atoi(argv[2]), atoi(argv[2]), atol(argv[3]), 0);
	if (argc == 3 && !strcmp(argv[1], "membarrier"))
		return membarrier_load(atol(argv[2]));
	fprintf(stderr, "usage: rrp-load pingpong|busypong CPU_A CPU_B N | switch CPU N | membarrier N\n");
	return 2;
}
