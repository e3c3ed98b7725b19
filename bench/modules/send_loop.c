// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's send workloads: IPIs sent in a loop from the kernel, so that one operation is one
 * send and hits each probe on the send path exactly once (user-space workloads reach the send
 * functions only through wakeups and switches, which hit other probes too).
 *
 * Write "KIND TARGET N" to /sys/kernel/debug/send_loop/run, from a task pinned to one CPU:
 *   res  N x smp_send_reschedule(TARGET): ipi_send_cpu, native_smp_send_reschedule;
 *   cfs  N x smp_call_function_single(TARGET, do_nothing, NULL, 1): csd_queue_cpu, ipi_send_cpu,
 *        native_send_call_func_single_ipi, and the call_function_single IPI on TARGET;
 *   cfm  N x smp_call_function_many(every online CPU, do_nothing, NULL, 1): csd_queue_cpu for each other
 *        CPU, ipi_send_cpumask, native_send_call_func_ipi, and the call_function IPI on each
 *        (TARGET is not used);
 * then read the file: "ops=N ns_per_op=X" (ktime_get_ns() around the loop), the load generator's format.
 * Bad input is -EINVAL; a sending CPU equal to TARGET is -EINVAL (an IPI to oneself is not sent).
 */
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/smp.h>
#include <linux/uaccess.h>
#include <trace/events/ipi.h>

static struct dentry *dir;
static DEFINE_MUTEX(lock);
static char result[64];

static void do_nothing(void *info) {}

static int run(const char *kind, unsigned int target, unsigned int n)
{
	unsigned int i, this;
	u64 t0, dt;

	if (!strcmp(kind, "cfm")) {
		t0 = ktime_get_ns();
		for (i = 0; i < n; i++) {
			preempt_disable();
			smp_call_function_many(cpu_online_mask, do_nothing, NULL, 1);
			preempt_enable();
		}
	} else if (!strcmp(kind, "res") || !strcmp(kind, "cfs")) {
		this = get_cpu();
		put_cpu();
		if (target >= nr_cpu_ids || !cpu_online(target) || target == this)
			return -EINVAL;
		t0 = ktime_get_ns();
		for (i = 0; i < n; i++) {
			if (kind[0] == 'r') {
				preempt_disable();
				smp_send_reschedule(target);
				preempt_enable();
			} else {
				smp_call_function_single(target, do_nothing, NULL, 1);
			}
		}
	} else {
		return -EINVAL;
	}
	dt = ktime_get_ns() - t0;
	snprintf(result, sizeof(result), "ops=%u ns_per_op=%llu.%03llu\n", n, dt / n, dt % n * 1000 / n);
	return 0;
}

static ssize_t run_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[32], kind[4];
	unsigned int target, n;
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (sscanf(buf, "%3s %u %u", kind, &target, &n) != 3 || n == 0 || n > 10000000)
		return -EINVAL;
	mutex_lock(&lock);
	ret = run(kind, target, n);
	mutex_unlock(&lock);
	return ret ? ret : len;
}

static ssize_t run_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, result, strlen(result));
	mutex_unlock(&lock);
	return ret;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
	.read = run_read,
};

static int __init send_loop_init(void)
{
	dir = debugfs_create_dir("send_loop", NULL);
	debugfs_create_file("run", 0600, dir, NULL, &run_fops);
	return 0;
}

static void __exit send_loop_exit(void)
{
	debugfs_remove(dir);
}

module_init(send_loop_init);
module_exit(send_loop_exit);
MODULE_DESCRIPTION("IPIs sent in a loop: the benchmark's send workloads");
MODULE_LICENSE("GPL");
