// SPDX-License-Identifier: GPL-2.0
/*
 * A test module that does to its own preempt-notifier list what KVM does to a vCPU thread's: the boot
 * and stress tests run it beside resched_probe, with tasks attached, to prove that the probe's wakeup
 * handler never walks a list that is changing (issue 21: KVM's vcpu_load()/vcpu_put() add and remove a
 * notifier on the vCPU thread's own list, and kvm_vcpu_block() is woken by other threads while it still
 * runs).
 *
 * Write "N" to /sys/kernel/debug/notifier_churn/run: the writing thread, N times (until a signal is
 * pending), registers NODES notifiers on itself, sets TASK_INTERRUPTIBLE, spins where a waker finds it
 * still running (every 16th time it sleeps up to a jiffy instead), sets TASK_RUNNING and unregisters
 * them; the write fails with -EINTR if a signal came before the first round. Write anything to
 * .../wake: every thread inside `run` is woken (wake_up_process(), as kvm_vcpu_kick() wakes a vCPU
 * thread through rcuwait_wake_up()). Read .../stats: "rounds=R wakeups=W woken=K oncpu=C": rounds done,
 * wake calls made on churners, those that found one in a sleeping state, and of those the ones that found
 * it still on its CPU (the KVM case).
 */
#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/kstrtox.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#define NODES 4
#define CHURNERS 8
#define SPIN 2000

static struct dentry *dir;
static struct task_struct __rcu *churners[CHURNERS];
static atomic64_t rounds, wakeups, woken, oncpu;

static void nop_in(struct preempt_notifier *n, int cpu) {}
static void nop_out(struct preempt_notifier *n, struct task_struct *next) {}
static struct preempt_ops ops = { .sched_in = nop_in, .sched_out = nop_out };

static long churn(unsigned long n)
{
	struct preempt_notifier nodes[NODES];
	unsigned long i;
	int k, slot;

	for (slot = 0; slot < CHURNERS; slot++)
		if (!cmpxchg((struct task_struct **)&churners[slot], NULL, current))
			break;
	if (slot == CHURNERS)
		return -EBUSY;
	for (k = 0; k < NODES; k++)
		preempt_notifier_init(&nodes[k], &ops);

	for (i = 0; i < n && !signal_pending(current); i++) {
		preempt_disable();
		for (k = 0; k < NODES; k++)
			preempt_notifier_register(&nodes[k]);
		preempt_enable();
		set_current_state(TASK_INTERRUPTIBLE);
		if (i % 16 == 15) {
			schedule_timeout(1);
		} else {
			for (k = 0; k < SPIN; k++)
				cpu_relax();
		}
		__set_current_state(TASK_RUNNING);
		preempt_disable();
		for (k = 0; k < NODES; k++)
			preempt_notifier_unregister(&nodes[k]);
		preempt_enable();
		if (i % 64 == 63)
			cond_resched();
	}
	rcu_assign_pointer(churners[slot], NULL);
	/* A waker may still hold our task pointer: it is an RCU reader, and task_structs outlive a grace
	 * period after release (delayed_put_task_struct). */
	atomic64_add(i, &rounds);
	return i;
}

static ssize_t run_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	unsigned long n;
	long done;
	int rc = kstrtoul_from_user(buf, count, 10, &n);

	if (rc)
		return rc;
	done = churn(n);
	if (done < 0)
		return done;
	return done || !n ? count : -EINTR;
}

static ssize_t wake_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	struct task_struct *t;
	bool hot;
	int slot;

	rcu_read_lock();
	for (slot = 0; slot < CHURNERS; slot++) {
		t = rcu_dereference(churners[slot]);
		if (!t)
			continue;
		/* The case of the crash: woken while still on its CPU (between set_current_state() and the
		 * unregistering), where the waker's wakeup probes run while it goes on changing its list. */
		hot = READ_ONCE(t->on_cpu) && READ_ONCE(t->__state) != TASK_RUNNING;
		atomic64_inc(&wakeups);
		if (wake_up_process(t)) {
			atomic64_inc(&woken);
			if (hot)
				atomic64_inc(&oncpu);
		}
	}
	rcu_read_unlock();
	return count;
}

static ssize_t stats_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	char text[128];
	int len = scnprintf(text, sizeof(text), "rounds=%lld wakeups=%lld woken=%lld oncpu=%lld\n",
			    atomic64_read(&rounds), atomic64_read(&wakeups), atomic64_read(&woken),
			    atomic64_read(&oncpu));

	return simple_read_from_buffer(buf, count, ppos, text, len);
}

static const struct file_operations run_fops = { .owner = THIS_MODULE, .write = run_write };
static const struct file_operations wake_fops = { .owner = THIS_MODULE, .write = wake_write };
static const struct file_operations stats_fops = { .owner = THIS_MODULE, .read = stats_read };

static int __init churn_init(void)
{
	preempt_notifier_inc();
	dir = debugfs_create_dir("notifier_churn", NULL);
	debugfs_create_file("run", 0200, dir, NULL, &run_fops);
	debugfs_create_file("wake", 0200, dir, NULL, &wake_fops);
	debugfs_create_file("stats", 0400, dir, NULL, &stats_fops);
	return 0;
}

static void __exit churn_exit(void)
{
	/* No writer is inside `run` now: an open file holds the module (.owner). */
	debugfs_remove(dir);
	preempt_notifier_dec();
}

module_init(churn_init);
module_exit(churn_exit);
MODULE_DESCRIPTION("Churns its own preempt notifiers while other threads wake it (a test for resched_probe)");
MODULE_LICENSE("GPL");
