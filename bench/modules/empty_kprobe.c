// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's floor: kprobes on the same symbols as resched_probe's kprobes (a kretprobe on
 * ttwu_queue_wakelist, as there; __resched_curr where the kernel has it out of line, as 7.x, else
 * resched_curr) with handlers that do nothing. What resched_probe costs beyond this is
 * the cost of its counting.
 */
#include <linux/kprobes.h>
#include <linux/module.h>

static int empty_pre(struct kprobe *p, struct pt_regs *regs) { return 0; }
static int empty_ret(struct kretprobe_instance *ri, struct pt_regs *regs) { return 0; }

static struct kprobe probes[] = {
	{ .symbol_name = "native_smp_send_reschedule", .pre_handler = empty_pre },
	{ .symbol_name = "native_send_call_func_single_ipi", .pre_handler = empty_pre },
	{ .symbol_name = "native_send_call_func_ipi", .pre_handler = empty_pre },
	{ .symbol_name = "__resched_curr", .pre_handler = empty_pre },
};
#define RSC (ARRAY_SIZE(probes) - 1)
static struct kprobe *probe_ptrs[ARRAY_SIZE(probes)];

static struct kretprobe wakelist = {
	.kp.symbol_name = "ttwu_queue_wakelist",
	.entry_handler = empty_ret,
	.handler = empty_ret,
	.data_size = sizeof(u32),
	.maxactive = 64,
};

static int __init empty_kprobe_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(probes); i++)
		probe_ptrs[i] = &probes[i];
	ret = register_kprobes(probe_ptrs, ARRAY_SIZE(probes));
	if (ret == -ENOENT || ret == -EINVAL) {
		/* No __resched_curr (6.12): resched_curr. The failed call left the kprobes reusable. */
		for (i = 0; i < ARRAY_SIZE(probes); i++)
			probes[i] = (struct kprobe){ .symbol_name = probes[i].symbol_name, .pre_handler = empty_pre };
		probes[RSC].symbol_name = "resched_curr";
		ret = register_kprobes(probe_ptrs, ARRAY_SIZE(probes));
	}
	if (ret) {
		pr_err("empty_kprobe: register_kprobes failed: %d\n", ret);
		return ret;
	}
	ret = register_kretprobe(&wakelist);
	if (ret) {
		pr_err("empty_kprobe: register_kretprobe failed: %d\n", ret);
		unregister_kprobes(probe_ptrs, ARRAY_SIZE(probes));
	}
	return ret;
}

static void __exit empty_kprobe_exit(void)
{
	unregister_kretprobe(&wakelist);
	unregister_kprobes(probe_ptrs, ARRAY_SIZE(probes));
}

module_init(empty_kprobe_init);
module_exit(empty_kprobe_exit);
MODULE_DESCRIPTION("Empty kprobes on resched_probe's symbols: the benchmark's floor");
MODULE_LICENSE("GPL");
