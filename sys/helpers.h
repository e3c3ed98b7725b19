/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers that expose macros and static inline functions to Rust (helpers.c). */
#ifndef RESCHED_HELPERS_H
#define RESCHED_HELPERS_H

#include <linux/types.h>

struct cpumask;
struct hlist_node;
struct kretprobe;
struct kretprobe_instance;
struct pt_regs;
struct rq;
struct preempt_notifier;
struct preempt_ops;
struct task_struct;
struct tracepoint;
struct unwind_state;

unsigned int rrp_nr_cpu_ids(void);
unsigned int rrp_smp_processor_id(void);
bool rrp_cpu_possible(unsigned int cpu);
bool rrp_cpu_online(unsigned int cpu);
void __percpu *rrp_alloc_percpu(size_t size, size_t align);
void rrp_this_cpu_inc(u64 __percpu *base, unsigned int idx);
void rrp_this_cpu_add(u64 __percpu *slot, u64 v);
u64 rrp_this_cpu_read(u64 __percpu *slot);
void rrp_this_cpu_write(u64 __percpu *slot, u64 v);
u64 *rrp_per_cpu_ptr(u64 __percpu *base, unsigned int cpu);
unsigned long rrp_regs_arg(struct pt_regs *regs, unsigned int n);
unsigned long rrp_regs_return_value(struct pt_regs *regs);
struct kretprobe *rrp_get_kretprobe(struct kretprobe_instance *ri);
void *rrp_kretprobe_data(struct kretprobe_instance *ri);
int rrp_rq_cpu(struct rq *rq);
unsigned long rrp_rq_cpu_offset(void);
unsigned long rrp_cpu_number_ptr(void);
bool rrp_is_err(const void *ptr);
struct task_struct *rrp_current(void);
void rrp_task_comm(struct task_struct *t, char *buf, size_t len);
void rrp_task_comm_nolock(struct task_struct *t, char *buf, size_t len);
bool rrp_rq_curr_need_resched(struct rq *rq);
bool rrp_task_on_cpu(struct task_struct *t);
void rrp_preempt_disable(void);
void rrp_preempt_enable(void);
int rrp_cpuhp_setup_prepare(const char *name, int (*startup)(unsigned int cpu, struct hlist_node *node));
int rrp_cpuhp_add_instance(int state, struct hlist_node *node);
int rrp_cpuhp_remove_instance(int state, struct hlist_node *node);
void rrp_cpuhp_remove_state(int state);
/* Where the task_struct fields the scheduler hooks read lie, and the bits they test (helpers.c). */
struct rrp_task_offsets {
	unsigned long state;
	unsigned long flags;
	unsigned long pid;
	unsigned long comm;
	unsigned long ti_flags;
	unsigned int pf_idle;
	unsigned int pf_kthread;
	int tif_lazy;
};
void rrp_task_offsets(struct rrp_task_offsets *o);
const char *rrp_preempt_model(void);
bool rrp_preempt_dynamic(void);
bool rrp_task_is_exiting(struct task_struct *t);
int rrp_task_tgid(struct task_struct *t);
void *rrp_raw_lock_new(void);
unsigned long rrp_raw_lock(void *lock);
void rrp_raw_unlock(void *lock, unsigned long flags);
void rrp_raw_lock_free(void *lock);
void rrp_preempt_notifier_init(struct preempt_notifier *n, struct preempt_ops *ops);
void rrp_preempt_notifier_register_current(struct preempt_notifier *n);
void rrp_preempt_notifier_register_new(struct preempt_notifier *n, struct task_struct *t);
void rrp_preempt_notifier_unregister_current(struct preempt_notifier *n);
struct preempt_notifier *rrp_preempt_notifier_find(struct task_struct *t, struct preempt_ops *ops);
void rrp_tracepoint_synchronize_unregister(void);
void rrp_synchronize_handlers(void);
bool rrp_unwind_enter(void);
void rrp_unwind_exit(void);
struct dentry *rrp_debugfs_create_file(const char *name, umode_t mode, struct dentry *parent, void *data,
				       const struct file_operations *fops);
const char *rrp_tracepoint_name(struct tracepoint *tp);
struct irqaction;
const char *rrp_irqaction_name(const struct irqaction *action);
const void *rrp_irq_counted_action(unsigned int irq, const struct irqaction *action, bool *hidden);
bool rrp_in_nmi(void);
u64 rrp_counter(void);
u64 rrp_clock_hz(void);
bool rrp_tsc_unstable(void);
void rrp_unwind_start(struct unwind_state *state, struct pt_regs *regs);
bool rrp_unwind_done(struct unwind_state *state);
void rrp_unwind_start_here(struct unwind_state *state);
bool rrp_within_this_module(unsigned long addr);
unsigned long rrp_tracepoint_iterator(struct tracepoint *tp);
int rrp_sprint_backtrace(char *buf, size_t len, unsigned long addr);
int rrp_sprint_function(char *buf, size_t len, unsigned long addr);

/* A task work item: `run` runs it in the task's context and frees it. */
struct rrp_work {
	struct callback_head head;
	void (*run)(struct rrp_work *w);
};
int rrp_task_work_add(struct task_struct *t, struct rrp_work *w);
int rrp_for_each_thread(int nr, void (*fn)(struct task_struct *, void *), void *data);

void rrp_rcu_read_lock(void);
void rrp_rcu_read_unlock(void);
void rrp_get_task_struct(struct task_struct *t);
void rrp_put_task_struct(struct task_struct *t);

#endif
