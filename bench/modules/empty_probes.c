// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's floor for the module as it is: empty handlers on every event it handles, by the
 * same mechanisms (the ipi, csd, irq and sched tracepoints, x86's vector entry and exit tracepoints, and for reschedule
 * requests sched_set_need_resched_tp where the kernel has it, else a kprobe on resched_curr), so that the module's cost per event can be set against the cost of being called at
 * all. (empty_kprobe.c is the other floor: empty kprobes on the x86 send functions.)
 */
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

struct cpumask;

static void empty_send_cpu(void *d, unsigned int cpu, unsigned long callsite, void *callback) {}
static void empty_send_mask(void *d, const struct cpumask *m, unsigned long callsite, void *callback) {}
static void empty_csd(void *d, unsigned int cpu, unsigned long callsite, void *func, void *csd) {}
static void empty_switch(void *d, bool preempt, struct task_struct *prev, struct task_struct *next,
			 unsigned int prev_state) {}
static void empty_fork(void *d, struct task_struct *parent, struct task_struct *child) {}
static void empty_exit(void *d, struct task_struct *p) {}
static void empty_wakeup(void *d, struct task_struct *p) {}
static void empty_vector(void *d, int vector) {}
static void empty_need_resched(void *d, struct task_struct *tsk, int cpu, int tif) {}
static void empty_wake_idle(void *d, int cpu) {}
static void empty_irq_entry(void *d, int irq, void *action) {}
static void empty_irq_exit(void *d, int irq, void *action, int ret) {}
static void empty_softirq(void *d, unsigned int vec_nr) {}
static void empty_csd_function(void *d, void *func, void *csd) {}

static struct {
	const char *name;
	void *probe;
	struct tracepoint *tp;
	bool optional;	/* left out where the kernel lacks it */
} tps[] = {
	{ "sched_set_need_resched_tp", empty_need_resched, NULL, true },
	{ "ipi_send_cpu", empty_send_cpu },
	{ "ipi_send_cpumask", empty_send_mask },
	{ "csd_queue_cpu", empty_csd },
	{ "sched_switch", empty_switch },
	{ "sched_process_fork", empty_fork },
	{ "sched_process_exit", empty_exit },
	{ "sched_wakeup", empty_wakeup },
	{ "sched_wake_idle_without_ipi", empty_wake_idle },
	/* noise/: what interrupts a CPU */
	{ "irq_handler_entry", empty_irq_entry },
	{ "irq_handler_exit", empty_irq_exit },
	{ "softirq_entry", empty_softirq },
	{ "softirq_exit", empty_softirq },
	{ "csd_function_entry", empty_csd_function },
	{ "csd_function_exit", empty_csd_function },
#ifdef CONFIG_X86
	{ "reschedule_entry", empty_vector },
	{ "call_function_single_entry", empty_vector },
	{ "call_function_entry", empty_vector },
	{ "reschedule_exit", empty_vector },
	{ "call_function_single_exit", empty_vector },
	{ "call_function_exit", empty_vector },
	{ "local_timer_entry", empty_vector },
	{ "local_timer_exit", empty_vector },
	{ "irq_work_entry", empty_vector },
	{ "irq_work_exit", empty_vector },
#endif
};

static void find_tp(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(tps); i++)
		if (!strcmp(tp->name, tps[i].name))
			tps[i].tp = tp;
}

static int empty_pre(struct kprobe *p, struct pt_regs *regs) { return 0; }

static struct kprobe rsc = { .symbol_name = "resched_curr", .pre_handler = empty_pre };
static bool rsc_registered;

static void unregister_tps(int n)
{
	while (n--)
		if (tps[n].tp)
			tracepoint_probe_unregister(tps[n].tp, tps[n].probe, NULL);
	tracepoint_synchronize_unregister();
}

static int __init empty_probes_init(void)
{
	int i, ret;

	for_each_kernel_tracepoint(find_tp, NULL);
	for (i = 0; i < ARRAY_SIZE(tps); i++) {
		if (!tps[i].tp && tps[i].optional)
			continue;
		ret = tps[i].tp ? tracepoint_probe_register(tps[i].tp, tps[i].probe, NULL) : -ENOENT;
		if (ret) {
			pr_err("empty_probes: tracepoint %s: %d\n", tps[i].name, ret);
			unregister_tps(i);
			return ret;
		}
	}
	/* The kprobe only where reschedule requests have no tracepoint, as in resched_probe. */
	if (tps[0].tp)
		return 0;
	ret = register_kprobe(&rsc);
	rsc_registered = !ret;
	if (ret) {
		pr_err("empty_probes: kprobe: %d\n", ret);
		unregister_tps(ARRAY_SIZE(tps));
	}
	return ret;
}

static void __exit empty_probes_exit(void)
{
	if (rsc_registered)
		unregister_kprobe(&rsc);
	unregister_tps(ARRAY_SIZE(tps));
}

module_init(empty_probes_init);
module_exit(empty_probes_exit);
MODULE_DESCRIPTION("Empty probes on resched_probe's events by its mechanisms: the benchmark's floor");
MODULE_LICENSE("GPL");
