// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel side of resched_probe's race checks (issue 21; qemu/guest/races.py), in one test module.
 * Files under /sys/kernel/debug/rrp_races/:
 *
 * KVM's notifier churn. KVM's vcpu_load()/vcpu_put() add and remove a notifier on the vCPU thread's own
 * list, and kvm_vcpu_block() is woken by other threads while it still runs; a wakeup probe that walked
 * such a thread's list could read a node being unlinked.
 *   churn  write "N": the writing thread, N times (until a signal is pending), registers NODES notifiers
 *          on itself, sets TASK_INTERRUPTIBLE, spins where a waker finds it still running (every 16th
 *          time it sleeps up to a jiffy instead), sets TASK_RUNNING and unregisters them; -EINTR if a
 *          signal came before the first round.
 *   wake   write anything: every thread inside `churn` is woken (wake_up_process(), as kvm_vcpu_kick()
 *          wakes a vCPU thread through rcuwait_wake_up()).
 *   stats  "rounds=R wakeups=W woken=K oncpu=C": rounds done, wake calls made on churners, those that
 *          found one in a sleeping state, and of those the ones that found it still on its CPU.
 *
 * A migration in the middle of attaching. resched_probe reads the CPU of a task it attaches and then
 * registers its notifier; a migration in between would leave the CPU before in its row and count a
 * spurious migration.
 *   move   write "TID": the next time thread TID takes a task reference in resched_probe
 *          (rrp_get_task_struct(), which attaching calls between reading the CPU and registering), a
 *          worker on another CPU moves it to that CPU (set_cpus_allowed_ptr()), and the kprobe waits
 *          until the worker is about to, so the move lands as soon as the thread can be preempted. Read:
 *          "armed=T moved=N to=CPU" (the thread still armed, moves made, the last one's CPU).
 *
 * A send a CPU never took before it went offline.
 *   send   write "CPU": fires ipi:ipi_send_cpu(CPU) as smp_send_reschedule() does, without the IPI: a
 *          reschedule start that no handler on CPU ends (the case of an IPI lost to CPU hotplug).
 *
 * A queued call of a known length, the oracle of noise/'s time per function (a clock of its own inside).
 *   spin   write "CPU US N": N calls of rrp_spin() on CPU by smp_call_function_single(), one after the
 *          other, each waited for; each spins US microseconds (udelay) and measures itself with
 *          ktime_get_mono_fast_ns() inside. Read: "calls=N inside_ns=S max_ns=M" since the load.
 *
 * A tracepoint fired from inside the unwinder. resched_probe takes a stack in its probe handlers; on 7.x
 * the unwinder's RCU read sections can end in rcu_read_unlock_special(), which sets need-resched and
 * fires sched_set_need_resched_tp, whose probe took a stack again, until the kernel stack overflowed.
 *   recurse  write "N": the next N times the unwinder steps (a kprobe on unwind_next_frame, x86), the
 *          current task's need-resched flag is cleared and set again, as rcu_read_unlock_special() sets
 *          it (set_tsk_need_resched(): the tracepoint fires when the flag is newly set). Read:
 *          "left=L done=D" (steps still armed, steps that fired it). Where the kernel has no
 *          sched_set_need_resched_tp, or no such kprobe can be placed, -ENODEV.
 *
 * The layout the guest's kprobe events need to tell, at __resched_curr(rq, tif)'s entry, whether it sets
 * a flag anew (the oracle of RSC where resched_probe counts from sched_set_need_resched_tp).
 *   layout "rq_cpu=O rq_curr=O task_pid=O tif_need_resched=B tif_need_resched_lazy=B lazy=L": offsets in
 *          struct rq and struct task_struct, the flags' bit numbers (-1: no lazy flag), and whether a lazy
 *          request can be made (CONFIG_PREEMPT_LAZY, or CONFIG_PREEMPT_DYNAMIC, which can switch to it);
 *          without, every request is TIF_NEED_RESCHED and the compiler may drop __resched_curr()'s
 *          constant `tif` argument (clang does in 7.3.4). The flags are the first word of the task
 *          (thread_info, CONFIG_THREAD_INFO_IN_TASK).
 */
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/kstrtox.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <trace/events/ipi.h>

#include <linux/mmu_context.h>	/* task_cpu_possible(), used by sched.h */
#include "sched.h"	/* kernel/sched/sched.h: struct rq */

#define NODES 4
#define CHURNERS 8
#define SPIN 2000

static struct dentry *dir;

/* --- KVM's notifier churn ----------------------------------------------------------------------------- */

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
			/* Not cpu_relax(): under QEMU's TCG a PAUSE ends the vCPU's turn. */
			for (k = 0; k < SPIN; k++)
				barrier();
		}
		__set_current_state(TASK_RUNNING);
		preempt_disable();
		for (k = 0; k < NODES; k++)
			preempt_notifier_unregister(&nodes[k]);
		preempt_enable();
		if (i % 64 == 63)
			cond_resched();
	}
	/* A waker may still hold our task pointer: it is an RCU reader, and a task_struct outlives a grace
	 * period after its release (delayed_put_task_struct). */
	rcu_assign_pointer(churners[slot], NULL);
	atomic64_add(i, &rounds);
	return i;
}

static ssize_t churn_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
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

/* --- A migration in the middle of attaching ----------------------------------------------------------- */

static atomic_t move_tid;		/* the armed thread, 0: none */
static atomic_t moves, move_to;
static atomic_t move_started;
static struct task_struct *move_task;	/* the thread to move, referenced while the work is pending */
static struct work_struct move_work;

static void move_fn(struct work_struct *w)
{
	int cpu = atomic_read(&move_to);

	atomic_set(&move_started, 1);
	/* Returns once the thread has moved: after its probe handler returned and it could be preempted. */
	if (!set_cpus_allowed_ptr(move_task, cpumask_of(cpu)))
		atomic_inc(&moves);
	put_task_struct(move_task);
}

static int move_pre(struct kprobe *kp, struct pt_regs *regs)
{
	int here = raw_smp_processor_id(), to;
	u64 end;

	if (current->pid != atomic_read(&move_tid) || atomic_cmpxchg(&move_tid, current->pid, 0) != current->pid)
		return 0;
	to = cpumask_next(here, cpu_online_mask);
	if (to >= nr_cpu_ids)
		to = cpumask_first(cpu_online_mask);
	if (to == here)
		return 0;
	atomic_set(&move_to, to);
	atomic_set(&move_started, 0);
	get_task_struct(current);
	move_task = current;
	queue_work_on(to, system_highpri_wq, &move_work);
	/* Wait (at most 1 s) until the worker is about to move this thread, and a little more so that it has
	 * asked: the move then lands at the first point where this thread can be preempted. */
	end = ktime_get_ns() + NSEC_PER_SEC;
	while (!atomic_read(&move_started) && ktime_get_ns() < end)
		barrier();
	end = ktime_get_ns() + 20 * NSEC_PER_MSEC;
	while (ktime_get_ns() < end)
		barrier();
	return 0;
}

static struct kprobe move_kp = {
	.symbol_name = "rrp_get_task_struct",
	.pre_handler = move_pre,
};
static bool move_registered;

static ssize_t move_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	int tid, rc = kstrtoint_from_user(buf, count, 10, &tid);

	if (rc)
		return rc;
	if (!move_registered)
		return -ENODEV;
	atomic_set(&move_tid, tid);
	return count;
}

static ssize_t move_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	char text[96];
	int len = scnprintf(text, sizeof(text), "armed=%d moved=%d to=%d\n", atomic_read(&move_tid),
			    atomic_read(&moves), atomic_read(&move_to));

	return simple_read_from_buffer(buf, count, ppos, text, len);
}

/* --- A send a CPU never took --------------------------------------------------------------------------- */

static ssize_t send_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	unsigned int cpu;
	int rc = kstrtouint_from_user(buf, count, 10, &cpu);

	if (rc)
		return rc;
	if (cpu >= nr_cpu_ids)
		return -EINVAL;
	trace_ipi_send_cpu(cpu, _RET_IP_, NULL);
	return count;
}

/* --- A queued call of a known length ----------------------------------------------------------------- */

static atomic64_t spin_inside_ns, spin_max_ns;
static atomic_t spin_calls;

static void rrp_spin(void *info)
{
	unsigned int us = *(unsigned int *)info;
	u64 start = ktime_get_mono_fast_ns(), ns, max;

	udelay(us);
	ns = ktime_get_mono_fast_ns() - start;
	atomic64_add(ns, &spin_inside_ns);
	max = atomic64_read(&spin_max_ns);
	while (ns > max && !atomic64_try_cmpxchg(&spin_max_ns, &max, ns))
		;
	atomic_inc(&spin_calls);
}

static ssize_t spin_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	unsigned int cpu, us, n, i;
	char text[48];
	int rc;

	if (count >= sizeof(text) || copy_from_user(text, buf, count))
		return -EINVAL;
	text[count] = 0;
	if (sscanf(text, "%u %u %u", &cpu, &us, &n) != 3 || cpu >= nr_cpu_ids || !us || us > 10000 || n > 10000)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		rc = smp_call_function_single(cpu, rrp_spin, &us, 1);
		if (rc)
			return rc;
	}
	return count;
}

static ssize_t spin_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	char text[96];
	int len = scnprintf(text, sizeof(text), "calls=%d inside_ns=%lld max_ns=%lld\n", atomic_read(&spin_calls),
			    atomic64_read(&spin_inside_ns), atomic64_read(&spin_max_ns));

	return simple_read_from_buffer(buf, count, ppos, text, len);
}

/* --- A tracepoint fired from inside the unwinder ------------------------------------------------------ */

static atomic_t recurse_left, recurse_done;

static int recurse_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (atomic_dec_if_positive(&recurse_left) < 0)
		return 0;
	/* Newly set: the tracepoint fires (set_tsk_need_resched(), include/linux/sched.h). */
	clear_tsk_need_resched(current);
	set_tsk_need_resched(current);
	set_preempt_need_resched();
	atomic_inc(&recurse_done);
	return 0;
}

static struct kprobe recurse_kp = {
	.symbol_name = "unwind_next_frame",
	.pre_handler = recurse_pre,
};
static bool recurse_registered;

static ssize_t recurse_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	int n, rc = kstrtoint_from_user(buf, count, 10, &n);

	if (rc)
		return rc;
	if (!recurse_registered)
		return -ENODEV;
	atomic_set(&recurse_left, n);
	return count;
}

static ssize_t recurse_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	char text[64];
	int len = scnprintf(text, sizeof(text), "left=%d done=%d\n", atomic_read(&recurse_left),
			    atomic_read(&recurse_done));

	return simple_read_from_buffer(buf, count, ppos, text, len);
}

/* --- The layout of the RSC oracle ------------------------------------------------------------------- */

#ifndef TIF_NEED_RESCHED_LAZY
#define TIF_NEED_RESCHED_LAZY (-1)
#endif
static_assert(offsetof(struct task_struct, thread_info.flags) == 0);

static ssize_t layout_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	char text[160];
	int len = scnprintf(text, sizeof(text),
			    "rq_cpu=%zu rq_curr=%zu task_pid=%zu tif_need_resched=%d tif_need_resched_lazy=%d lazy=%d\n",
			    offsetof(struct rq, cpu), offsetof(struct rq, curr), offsetof(struct task_struct, pid),
			    TIF_NEED_RESCHED, TIF_NEED_RESCHED_LAZY,
			    IS_ENABLED(CONFIG_PREEMPT_LAZY) || IS_ENABLED(CONFIG_PREEMPT_DYNAMIC));

	return simple_read_from_buffer(buf, count, ppos, text, len);
}

static const struct file_operations churn_fops = { .owner = THIS_MODULE, .write = churn_write };
static const struct file_operations wake_fops = { .owner = THIS_MODULE, .write = wake_write };
static const struct file_operations stats_fops = { .owner = THIS_MODULE, .read = stats_read };
static const struct file_operations move_fops = { .owner = THIS_MODULE, .write = move_write, .read = move_read };
static const struct file_operations send_fops = { .owner = THIS_MODULE, .write = send_write };
static const struct file_operations spin_fops = { .owner = THIS_MODULE, .write = spin_write, .read = spin_read };
static const struct file_operations layout_fops = { .owner = THIS_MODULE, .read = layout_read };
static const struct file_operations recurse_fops = { .owner = THIS_MODULE, .write = recurse_write, .read = recurse_read };

static int __init races_init(void)
{
	int rc;

	INIT_WORK(&move_work, move_fn);
	/* resched_probe's helper; without resched_probe loaded, `move` says -ENODEV. */
	rc = register_kprobe(&move_kp);
	move_registered = !rc;
	if (rc)
		pr_info("rrp_races: no kprobe on rrp_get_task_struct (%d): `move` is off\n", rc);
#if defined(CONFIG_X86) && defined(RRP_NEED_RESCHED_TP)
	/* Only where set_tsk_need_resched() fires sched_set_need_resched_tp (7.x; Kbuild). */
	rc = register_kprobe(&recurse_kp);
	recurse_registered = !rc;
	if (rc)
		pr_info("rrp_races: no kprobe on unwind_next_frame (%d): `recurse` is off\n", rc);
#endif
	preempt_notifier_inc();
	dir = debugfs_create_dir("rrp_races", NULL);
	debugfs_create_file("churn", 0200, dir, NULL, &churn_fops);
	debugfs_create_file("wake", 0200, dir, NULL, &wake_fops);
	debugfs_create_file("stats", 0400, dir, NULL, &stats_fops);
	debugfs_create_file("move", 0600, dir, NULL, &move_fops);
	debugfs_create_file("send", 0200, dir, NULL, &send_fops);
	debugfs_create_file("layout", 0400, dir, NULL, &layout_fops);
	debugfs_create_file("spin", 0600, dir, NULL, &spin_fops);
	debugfs_create_file("recurse", 0600, dir, NULL, &recurse_fops);
	return 0;
}

static void __exit races_exit(void)
{
	/* No writer is inside `churn` now: an open file holds the module (.owner). */
	debugfs_remove(dir);
	if (move_registered)
		unregister_kprobe(&move_kp);
	if (recurse_registered)
		unregister_kprobe(&recurse_kp);
	flush_work(&move_work);
	preempt_notifier_dec();
}

module_init(races_init);
module_exit(races_exit);
MODULE_DESCRIPTION("Test helpers for resched_probe's race checks: KVM's notifier churn, a move while attaching");
MODULE_LICENSE("GPL");
