// SPDX-License-Identifier: GPL-2.0
/*
 * One line of C for each macro or static inline function the Rust code reaches, as the kernel does in
 * rust/helpers/. No counting logic here.
 */
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/irqdesc.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/task_work.h>
#include <linux/tracepoint.h>
#ifdef CONFIG_X86
#include <asm/unwind.h>
#endif

#include <linux/mmu_context.h>	/* task_cpu_possible(), used by sched.h */
#include "sched.h"	/* kernel/sched/sched.h: struct rq, cpu_of() */
#include "helpers.h"
#include <linux/delay.h>
#include <linux/math64.h>
#ifdef CONFIG_X86_TSC
#include <asm/tsc.h>
#endif
#if defined(CONFIG_ARM64) && defined(CONFIG_ARM_ARCH_TIMER)
#include <asm/sysreg.h>
#include <clocksource/arm_arch_timer.h>
#endif

/* nr_cpu_ids (a macro when CONFIG_FORCE_NR_CPUS) */
unsigned int rrp_nr_cpu_ids(void) { return nr_cpu_ids; }

/* raw_smp_processor_id(): callers run with preemption off (probe handlers) or accept a stale id */
unsigned int rrp_smp_processor_id(void) { return raw_smp_processor_id(); }

/* cpu_possible() */
bool rrp_cpu_possible(unsigned int cpu) { return cpu_possible(cpu); }

/* cpu_online() */
bool rrp_cpu_online(unsigned int cpu) { return cpu_online(cpu); }

/* __alloc_percpu() (a macro for allocation profiling) */
void __percpu *rrp_alloc_percpu(size_t size, size_t align) { return __alloc_percpu(size, align); }

/* this_cpu_inc() on one element of a per-cpu u64 array: one IRQ-safe instruction on x86 */
void rrp_this_cpu_inc(u64 __percpu *base, unsigned int idx) { this_cpu_inc(base[idx]); }

/* this_cpu_add() on one per-cpu u64 */
void rrp_this_cpu_add(u64 __percpu *slot, u64 v) { this_cpu_add(*slot, v); }

/* this_cpu_read() of one per-cpu u64 */
u64 rrp_this_cpu_read(u64 __percpu *slot) { return this_cpu_read(*slot); }

/* this_cpu_write() of one per-cpu u64 */
void rrp_this_cpu_write(u64 __percpu *slot, u64 v) { this_cpu_write(*slot, v); }

/* per_cpu_ptr() */
u64 *rrp_per_cpu_ptr(u64 __percpu *base, unsigned int cpu) { return per_cpu_ptr(base, cpu); }

/* regs_get_kernel_argument() */
unsigned long rrp_regs_arg(struct pt_regs *regs, unsigned int n) { return regs_get_kernel_argument(regs, n); }

/* regs_return_value() */
unsigned long rrp_regs_return_value(struct pt_regs *regs) { return regs_return_value(regs); }

/* get_kretprobe() */
struct kretprobe *rrp_get_kretprobe(struct kretprobe_instance *ri) { return get_kretprobe(ri); }

/* kretprobe_instance::data (a flexible array member) */
void *rrp_kretprobe_data(struct kretprobe_instance *ri) { return ri->data; }

/* cpu_of() from kernel/sched/sched.h */
int rrp_rq_cpu(struct rq *rq) { return cpu_of(rq); }

/* offsetof(struct rq, cpu): where cpu_of() reads, so that a probe handler reads it without a call */
unsigned long rrp_rq_cpu_offset(void) { return offsetof(struct rq, cpu); }

#ifdef CONFIG_X86_64
/* the per-cpu address raw_smp_processor_id() reads through %gs: pcpu_hot.cpu_number on 6.12, the per-cpu
 * variable cpu_number of its own on 7.x (RRP_PCPU_HOT: Kbuild found struct pcpu_hot in the tree) */
#ifdef RRP_PCPU_HOT
unsigned long rrp_cpu_number_ptr(void) { return (unsigned long)&pcpu_hot.cpu_number; }
#else
unsigned long rrp_cpu_number_ptr(void) { return (unsigned long)&cpu_number; }
#endif
#endif

/* IS_ERR() */
bool rrp_is_err(const void *ptr) { return IS_ERR(ptr); }

/* current */
struct task_struct *rrp_current(void) { return current; }

/* task->tgid: the process (thread group) id */
int rrp_task_tgid(struct task_struct *t) { return t->tgid; }

/* get_task_comm() into a buffer of any size (6.12's __get_task_comm(), which 7.x no longer has) */
void rrp_task_comm(struct task_struct *t, char *buf, size_t len)
{
	task_lock(t);
	strscpy_pad(buf, t->comm, len);
	task_unlock(t);
}

/* t->comm without task_lock(), which the scheduler must not take (a task may be renaming itself: the
 * copy may mix two names, and is NUL-terminated) */
void rrp_task_comm_nolock(struct task_struct *t, char *buf, size_t len)
{
	size_t n = min(len, sizeof(t->comm));

	if (!n)
		return;
	memcpy(buf, t->comm, n);
	buf[n - 1] = '\0';
}

/* test_tsk_need_resched(rq->curr): whether the runqueue's current task is already marked (rq->curr is
 * freed only after an RCU grace period; callers run with preemption off) */
bool rrp_rq_curr_need_resched(struct rq *rq) { return test_tsk_need_resched(READ_ONCE(rq->curr)); }

/* READ_ONCE(t->on_cpu): whether the task is on a CPU (running, or being switched in or out). Stable while
 * the caller holds the task's runqueue lock: prepare_task() sets it and finish_task() clears it under that
 * lock (kernel/sched/core.c). Without SMP only the current task is on the CPU. */
bool rrp_task_on_cpu(struct task_struct *t)
{
#ifdef CONFIG_SMP
	return READ_ONCE(t->on_cpu);
#else
	return t == current;
#endif
}

/* preempt_disable() */
void rrp_preempt_disable(void) { preempt_disable(); }

/* preempt_enable() */
void rrp_preempt_enable(void) { preempt_enable(); }

/* PF_EXITING: the task is in do_exit() */
bool rrp_task_is_exiting(struct task_struct *t) { return t->flags & PF_EXITING; }

/*
 * Where task_is_running() (__state), is_idle_task() (flags & PF_IDLE), task->pid and
 * test_tsk_thread_flag() (thread_info.flags, in the task with THREAD_INFO_IN_TASK: x86-64 and arm64)
 * read, and the bits they test: asked once at load, so that the scheduler hooks and the
 * need-resched tracepoint read the fields without a call (sys/task.rs). tif_lazy is -1 without lazy
 * preemption (6.12), and ti_flags then unused.
 */
void rrp_task_offsets(struct rrp_task_offsets *o)
{
	BUILD_BUG_ON(sizeof_field(struct task_struct, __state) != sizeof(u32));
	BUILD_BUG_ON(sizeof_field(struct task_struct, flags) != sizeof(u32));
	BUILD_BUG_ON(sizeof_field(struct task_struct, pid) != sizeof(u32));
	o->state = offsetof(struct task_struct, __state);
	o->flags = offsetof(struct task_struct, flags);
	o->pid = offsetof(struct task_struct, pid);
	BUILD_BUG_ON(sizeof_field(struct task_struct, comm) != 16);
	o->comm = offsetof(struct task_struct, comm);
	o->pf_idle = PF_IDLE;
	o->pf_kthread = PF_KTHREAD;
	o->ti_flags = 0;
	o->tif_lazy = -1;
#if defined(CONFIG_THREAD_INFO_IN_TASK) && defined(CONFIG_ARCH_HAS_PREEMPT_LAZY)
	BUILD_BUG_ON(sizeof_field(struct task_struct, thread_info.flags) != sizeof(unsigned long));
	o->ti_flags = offsetof(struct task_struct, thread_info.flags);
	o->tif_lazy = TIF_NEED_RESCHED_LAZY;
#endif
}

/*
 * The preemption model in force (preempt_model_*(), include/linux/preempt.h), as
 * /sys/kernel/debug/sched/preempt names it; "rt" with PREEMPT_RT. With PREEMPT_DYNAMIC it may change at
 * run time.
 */
const char *rrp_preempt_model(void)
{
	if (preempt_model_rt())
		return "rt";
#ifdef CONFIG_ARCH_HAS_PREEMPT_LAZY
	if (preempt_model_lazy())
		return "lazy";
#endif
	if (preempt_model_full())
		return "full";
	if (preempt_model_voluntary())
		return "voluntary";
	if (preempt_model_none())
		return "none";
	return "unknown";
}

/* CONFIG_PREEMPT_DYNAMIC: the model is chosen at boot (preempt=) and may change at run time */
bool rrp_preempt_dynamic(void) { return IS_ENABLED(CONFIG_PREEMPT_DYNAMIC); }

/* preempt_notifier_init() */
void rrp_preempt_notifier_init(struct preempt_notifier *n, struct preempt_ops *ops) { preempt_notifier_init(n, ops); }

/* preempt_notifier_register(); the caller has preemption off, as KVM does: the list must not be walked half-changed */
void rrp_preempt_notifier_register_current(struct preempt_notifier *n) { preempt_notifier_register(n); }

/* preempt_notifier_register() for a new task that has not run yet (its list is not walked until then) */
void rrp_preempt_notifier_register_new(struct preempt_notifier *n, struct task_struct *t) { hlist_add_head(&n->link, &t->preempt_notifiers); }

/* preempt_notifier_unregister() with preemption off */
void rrp_preempt_notifier_unregister_current(struct preempt_notifier *n) { preempt_disable(); preempt_notifier_unregister(n); preempt_enable(); }

/* hlist_for_each_entry() over a task's notifiers: the one with `ops`, or NULL */
struct preempt_notifier *rrp_preempt_notifier_find(struct task_struct *t, struct preempt_ops *ops)
{
	struct preempt_notifier *n;

	hlist_for_each_entry(n, &t->preempt_notifiers, link)
		if (n->ops == ops)
			return n;
	return NULL;
}

/* cpuhp_setup_state_multi() on a dynamic state before the CPU is brought up (CPUHP_BP_PREPARE_DYN: the
 * startup callback runs on a control CPU while the CPU is still offline); the state number, or an errno */
int rrp_cpuhp_setup_prepare(const char *name, int (*startup)(unsigned int cpu, struct hlist_node *node))
{
	return cpuhp_setup_state_multi(CPUHP_BP_PREPARE_DYN, name, startup, NULL);
}

/* cpuhp_state_add_instance_nocalls() */
int rrp_cpuhp_add_instance(int state, struct hlist_node *node) { return cpuhp_state_add_instance_nocalls(state, node); }

/* cpuhp_state_remove_instance_nocalls() */
int rrp_cpuhp_remove_instance(int state, struct hlist_node *node) { return cpuhp_state_remove_instance_nocalls(state, node); }

/* cpuhp_remove_multi_state() */
void rrp_cpuhp_remove_state(int state) { cpuhp_remove_multi_state(state); }

/* tracepoint_synchronize_unregister() */
void rrp_tracepoint_synchronize_unregister(void) { tracepoint_synchronize_unregister(); }

/*
 * Waits until every probe handler running now has returned. Kprobe handlers and preempt notifiers run
 * with preemption off (RCU readers: synchronize_rcu() waits for them). Tracepoint probes did too until
 * 6.12; 7.x calls them under SRCU-fast (guard(srcu_fast_notrace)(&tracepoint_srcu) in __DECLARE_TRACE,
 * include/linux/tracepoint.h; RRP_TRACEPOINT_SRCU: Kbuild found srcu_fast there). None of the module's
 * tracepoints is faultable (a syscall tracepoint), so a tracepoint_srcu grace period is what waits for
 * them ("tracepoint_is_faultable() == false: call_srcu()", tracepoint.h); it runs beside the RCU one, as
 * kernel/tracepoint.c's own release does (start_poll_synchronize_srcu()).
 */
void rrp_synchronize_handlers(void)
{
#ifdef RRP_TRACEPOINT_SRCU
	unsigned long srcu = start_poll_synchronize_srcu(&tracepoint_srcu);

	synchronize_rcu();
	if (!poll_state_synchronize_srcu(&tracepoint_srcu, srcu))
		synchronize_srcu(&tracepoint_srcu);
#else
	synchronize_rcu();
#endif
}

/* debugfs_create_file() (a _Generic macro over debugfs_create_file_full() in 7.x) */
struct dentry *rrp_debugfs_create_file(const char *name, umode_t mode, struct dentry *parent, void *data,
				       const struct file_operations *fops)
{
	return debugfs_create_file(name, mode, parent, data, fops);
}

/* tracepoint->name */
const char *rrp_tracepoint_name(struct tracepoint *tp) { return tp->name; }

/* irqaction->name (read once per device interrupt and CPU: noise/) */
const char *rrp_irqaction_name(const struct irqaction *action) { return action->name; }

/*
 * The handler of device interrupt irq whose runs count as the line's interruptions, as /proc/interrupts
 * counts them: desc->action, the first of every run of the line (kernel/irq/handle.c,
 * for_each_action_of_desc()), or for a per-CPU line (IRQ_PER_CPU_DEVID: one action runs per interrupt,
 * in 7.3 the one whose affinity holds the CPU, kernel/irq/chip.c handle_percpu_devid_irq()) the one
 * running, action. Compared, never dereferenced. *hidden: whether the line is left out of
 * /proc/interrupts' numbered lines (IRQ_HIDDEN: arm64's IPIs, arch/arm64/kernel/smp.c). From a
 * handler's tracepoint, in hard interrupt context: the descriptor lookup is RCU-safe (irq_to_desc():
 * mtree_load() in 6.12 and 7.3), and the descriptor outlives the handlers running on it.
 */
const void *rrp_irq_counted_action(unsigned int irq, const struct irqaction *action, bool *hidden)
{
	struct irq_data *data = irq_get_irq_data(irq);
	struct irq_desc *desc;
	unsigned int status;

	if (!data) {
		*hidden = true;
		return NULL;
	}
	desc = irq_data_to_desc(data);
	status = READ_ONCE(desc->status_use_accessors);
	*hidden = status & IRQ_HIDDEN;
	if (status & IRQ_PER_CPU_DEVID)
		return action;
	return READ_ONCE(desc->action);
}

/* in_nmi(): the irq tracepoints also fire in NMI flow handlers (handle_fasteoi_nmi(), kernel/irq/chip.c) */
bool rrp_in_nmi(void) { return in_nmi(); }

/*
 * The counter the module's clock reads (sys/time.rs): x86's TSC (the Rust side reads it in place; this
 * reading is for the check at load), arm64's through the kernel's arch_timer_read_counter, which
 * carries the workarounds of the CPU's counter errata (drivers/clocksource/arm_arch_timer.c).
 */
u64 rrp_counter(void)
{
#if defined(CONFIG_X86_TSC)
	return rdtsc();
#elif defined(CONFIG_ARM64) && defined(CONFIG_ARM_ARCH_TIMER)
	return arch_timer_read_counter();
#else
	return 0;
#endif
}

/*
 * Whether counts at `hz` take what the monotonic clock says they take, within 1%, over 2 ms on one
 * CPU at load (whatever the clocksource: kvm-clock, HPET, the counter itself).
 */
static bool rrp_counter_agrees(u64 hz)
{
	u64 c, ns, expect;

	preempt_disable();
	c = rrp_counter();
	ns = ktime_get_mono_fast_ns();
	mdelay(2);
	c = rrp_counter() - c;
	ns = ktime_get_mono_fast_ns() - ns;
	preempt_enable();
	expect = div64_u64(c * NSEC_PER_SEC, hz);
	if (expect > ns + ns / 100 || expect + ns / 100 < ns) {
		pr_warn("resched_probe: the counter at %llu Hz counted %llu ns in %llu ns of the monotonic clock: not used\n",
			hz, expect, ns);
		return false;
	}
	return true;
}

/*
 * The rate in Hz of the counter the module's clock may read (sys/time.rs), else 0. Its readings must
 * compare between CPUs and stand for the same time everywhere and always.
 * x86, the TSC:
 * - synchronized between CPUs, and not halting in idle: the kernel marks it unstable when its CPUs'
 *   TSCs are not (tsc.c: "TSCs unsynchronized", 6.12 line 1556, 7.3 line 1552; tsc_sync.c:
 *   "check_tsc_sync_source failed", 346 and 347, for a CPU brought up later) and when an idle state
 *   stops it (drivers/acpi/processor_idle.c: "TSC halts in idle", 203 and 211; intel_idle.c);
 * - at a rate that never changes: CONSTANT_TSC (CPUID 0x80000007 EDX bit 8, or the CPU model:
 *   arch/x86/kernel/cpu/intel.c and amd.c) with NONSTOP_TSC; without CONSTANT_TSC the kernel follows
 *   rate changes only through a cpufreq notifier, which marks it unstable at the first
 *   (time_cpufreq_notifier(), tsc.c). In a guest the hypervisor keeps the rate and keeps it counting
 *   while a vCPU halts, so a guest's TSC qualifies without them (QEMU's TCG CPUs have neither).
 * arm64, the architected counter: one system counter for every CPU, at a fixed frequency, which
 * CNTFRQ_EL0 gives (the kernel takes the same register, arch_timer_detect_rate(), unless firmware
 * gives a "clock-frequency" over a wrong one: the check below catches that).
 * Both: the counts at that rate must agree with the monotonic clock at load (rrp_counter_agrees()). A
 * TSC the kernel marks unstable after the load stays the module's clock until it is loaded again
 * (sys/time.rs, stale()).
 */
u64 rrp_clock_hz(void)
{
	u64 hz = 0;

#if defined(CONFIG_X86_TSC)
	if (!boot_cpu_has(X86_FEATURE_TSC) || !tsc_khz || check_tsc_unstable())
		return 0;
	if (!(boot_cpu_has(X86_FEATURE_CONSTANT_TSC) && boot_cpu_has(X86_FEATURE_NONSTOP_TSC)) &&
	    !boot_cpu_has(X86_FEATURE_HYPERVISOR))
		return 0;
	hz = tsc_khz * 1000ULL;
#elif defined(CONFIG_ARM64) && defined(CONFIG_ARM_ARCH_TIMER)
	hz = read_sysreg(cntfrq_el0);
#endif
	return hz && rrp_counter_agrees(hz) ? hz : 0;
}

/* Whether the kernel has marked the TSC unstable (since the load). */
bool rrp_tsc_unstable(void)
{
#ifdef CONFIG_X86_TSC
	return check_tsc_unstable();
#else
	return false;
#endif
}

#ifdef CONFIG_X86
/* Stacks on x86 (stacks/<tag>): the kernel's unwinder. Other architectures have no exported unwinder
 * that starts from a probe's registers; the Rust side records no stacks there. */
/*
 * One bit per context level (task, softirq, hardirq, NMI: interrupt_context_level()) of this CPU that is
 * taking a stack. The unwinder can fire a tracepoint the module probes: its RCU read sections end in
 * rcu_read_unlock_special(), which calls set_tsk_need_resched() -> sched_set_need_resched_tp (7.x); a
 * stack taken there would recurse until the kernel stack overflows. Callers have preemption off.
 */
static DEFINE_PER_CPU(unsigned int, rrp_unwinding);

/* Enters stack taking in this context; false if this context of this CPU is already taking one */
bool rrp_unwind_enter(void)
{
	unsigned int bit = 1U << interrupt_context_level();

	if (this_cpu_read(rrp_unwinding) & bit)
		return false;
	this_cpu_or(rrp_unwinding, bit);
	barrier();
	return true;
}

/* Leaves what rrp_unwind_enter() entered */
void rrp_unwind_exit(void)
{
	barrier();
	this_cpu_and(rrp_unwinding, ~(1U << interrupt_context_level()));
}

/* unwind_start() from a probe's registers, on the current task's stack (what stack_trace_save_regs() does) */
void rrp_unwind_start(struct unwind_state *state, struct pt_regs *regs) { unwind_start(state, current, regs, NULL); }

/* unwind_start() from the caller's own frame on the current task's stack (what stack_trace_save() does) */
void rrp_unwind_start_here(struct unwind_state *state) { unwind_start(state, current, NULL, NULL); }

/* unwind_done() */
bool rrp_unwind_done(struct unwind_state *state) { return unwind_done(state); }
#endif

/* within_module(addr, THIS_MODULE): whether a code address is this module's */
bool rrp_within_this_module(unsigned long addr) { return within_module(addr, THIS_MODULE); }

/* tracepoint->iterator: the __traceiter_<name> function that calls the probes when there are several */
unsigned long rrp_tracepoint_iterator(struct tracepoint *tp) { return (unsigned long)tp->iterator; }

/* %pB (sprint_backtrace(), which is not exported) into a buffer of `len` bytes: -EINVAL unless it holds KSYM_SYMBOL_LEN */
int rrp_sprint_backtrace(char *buf, size_t len, unsigned long addr) { return len < KSYM_SYMBOL_LEN ? -EINVAL : snprintf(buf, len, "%pB", (void *)addr); }

/* %ps (a function's name, as sprint_symbol_no_offset() gives it, which is not exported) into a buffer of `len` bytes */
int rrp_sprint_function(char *buf, size_t len, unsigned long addr) { return len < KSYM_SYMBOL_LEN ? -EINVAL : snprintf(buf, len, "%ps", (void *)addr); }

/* rcu_read_lock() */
void rrp_rcu_read_lock(void) { rcu_read_lock(); }

/* rcu_read_unlock() */
void rrp_rcu_read_unlock(void) { rcu_read_unlock(); }

/* get_task_struct() */
void rrp_get_task_struct(struct task_struct *t) { get_task_struct(t); }

/* put_task_struct() */
void rrp_put_task_struct(struct task_struct *t) { put_task_struct(t); }

/*
 * Task work (task_work_add): `run` runs in the task's own context (TWA_SIGNAL: as soon as it runs,
 * interrupting an interruptible sleep the way a signal would, with the system call restarted) and frees
 * the work. Each pending work holds a module reference, dropped by a tail call, so that the last
 * instruction this module runs for it is the jump into module_put(), which returns to task_work_run().
 *
 * The tail call is forced (clang's musttail), as frame pointers (arm64, or FRAME_POINTER on x86) turn
 * sibling calls off (-fno-optimize-sibling-calls). musttail needs the callee's type to be the caller's:
 * rrp_module_put_tail() is module_put() itself (the same symbol), declared with the work function's type.
 */
#if !__has_attribute(musttail)
#error "rrp_work_fn() needs the musttail attribute (clang; build with LLVM=1)"
#endif
extern void rrp_module_put_tail(struct callback_head *mod) __asm__("module_put");

static void rrp_work_fn(struct callback_head *head)
{
	struct rrp_work *w = container_of(head, struct rrp_work, head);

	w->run(w);
	__attribute__((musttail)) return rrp_module_put_tail((struct callback_head *)THIS_MODULE);
}

int rrp_task_work_add(struct task_struct *t, struct rrp_work *w)
{
	if (t->flags & PF_KTHREAD)
		return -EPERM;
	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	init_task_work(&w->head, rrp_work_fn);
	if (task_work_add(t, &w->head, TWA_SIGNAL)) {
		module_put(THIS_MODULE);
		return -ESRCH;
	}
	return 0;
}

/* Calls fn(thread, data) for every thread of the process whose tgid is nr (in the caller's pid
 * namespace), under RCU (fn must not sleep); -ESRCH when there is no such process. */
int rrp_for_each_thread(int nr, void (*fn)(struct task_struct *, void *), void *data)
{
	struct task_struct *p, *t;
	struct pid *pid = find_get_pid(nr);

	if (!pid)
		return -ESRCH;
	p = get_pid_task(pid, PIDTYPE_TGID);
	put_pid(pid);
	if (!p)
		return -ESRCH;
	rcu_read_lock();
	for_each_thread(p, t)
		fn(t, data);
	rcu_read_unlock();
	put_task_struct(p);
	return 0;
}

/*
 * A raw spinlock of its own for a Rust owner (sys/rawlock.rs): it never sleeps, on PREEMPT_RT too,
 * where spinlock_t does. Allocated (process context), taken with interrupts off, freed by its owner.
 */
void *rrp_raw_lock_new(void)
{
	raw_spinlock_t *lock = kmalloc(sizeof(*lock), GFP_KERNEL);

	if (lock)
		raw_spin_lock_init(lock);
	return lock;
}

unsigned long rrp_raw_lock(void *lock)
{
	unsigned long flags;

	raw_spin_lock_irqsave((raw_spinlock_t *)lock, flags);
	return flags;
}

void rrp_raw_unlock(void *lock, unsigned long flags) { raw_spin_unlock_irqrestore((raw_spinlock_t *)lock, flags); }

void rrp_raw_lock_free(void *lock) { kfree(lock); }
