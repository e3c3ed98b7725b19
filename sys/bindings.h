/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C declarations this module's Rust code uses; Kbuild runs bindgen on this file to make
 * sys/bindings_generated.rs. The kernel crate's own bindings do not include these headers in 6.12.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/timekeeping.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/smp_types.h>
#include <linux/tracepoint.h>

#ifdef CONFIG_X86
#include <asm/unwind.h>
#endif

#include "helpers.h"
