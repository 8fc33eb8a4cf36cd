// SPDX-License-Identifier: GPL-2.0
/* main.c - banner, attribute registry and the __init entry point. */
#include "sample.h"
#include "stats.h"

#ifdef __clang__
#define SAMPLE_CC_VERSION "clang version " __clang_version__
#else
#define SAMPLE_CC_VERSION "gcc version " __VERSION__
#endif

/* init/version.c: tools read the release from this string. */
const char linux_banner[] =
	"Linux version 6.1.0-sample (builder@ltosyms) (" SAMPLE_CC_VERSION ") "
	"#1 SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 1970\n";

unsigned long sample_jiffies;
int sample_loglevel = 4;

struct attr_slot {
	struct sample_device *dev;
	struct device_attribute *attr;
};

/* The core's own device: its "stats" attribute is lib.c's global stats_show(). */
static struct sample_device core_dev = {
	.id = 1, .name = "core0", .label = "Core", .driver = "core",
};
static DEVICE_ATTR_RO(stats);

static struct attr_slot attr_registry[8];
static int nr_attrs;
static char show_buf[256];

void sample_register_attr(struct sample_device *dev, struct device_attribute *attr)
{
	if (SAMPLE_WARN_ON(nr_attrs >= (int)ARRAY_SIZE(attr_registry)))
		return;
	attr_registry[nr_attrs].dev = dev;
	attr_registry[nr_attrs].attr = attr;
	nr_attrs++;
}

/* Like sysfs reads: every show() is reached through a function pointer. */
noinline long sysfs_show_all(void)
{
	static int count;	/* gcc: count.N, a second one besides widget.c's */
	long total = 0;
	int i;

	count++;
	for (i = 0; i < nr_attrs; i++)
		total += attr_registry[i].attr->show(attr_registry[i].dev,
						     attr_registry[i].attr, show_buf);
	return total + count;
}

/*
 * arch/x86/entry/common.c: head.S's entry_SYSCALL_64 (plain assembly, so
 * never part of LTO) calls do_syscall_64(), which dispatches through a
 * table.  This keeps the widget functions on an ordinary, "hot" path
 * instead of being reachable only from the __cold __init code.
 */
static unsigned long syscall_count[4];

/*
 * Global but called only from this file: a plain build keeps the
 * out-of-line copy other files could call; every LTO flavour internalizes
 * it, inlines it into both callers and drops that copy.  (widget_get_id()
 * in lib.c is the cross-file variant, which ThinLTO keeps out of line
 * because it imports it into other modules.)
 */
void account_syscall(unsigned long nr)
{
	sample_jiffies += nr + 1;
	syscall_count[nr & 3]++;
}

static long sys_show_all(long arg)
{
	account_syscall(16);
	return sysfs_show_all() + stats_show(&core_dev, NULL, show_buf) + arg;
}

static long sys_widget_poke(long arg)
{
	struct widget *w = &sample_widgets[arg & 3];
	long r = widget_check(w);

	return r + widget_process(w, (int)(arg >> 2));
}

static long sys_widget_update(long arg)
{
	return widget_update(&sample_widgets[arg & 3], (int)(arg >> 2));
}

static long sys_widget_score(long arg)
{
	return widget_score_all(sample_widgets, (int)(arg & 3) + 1);
}

typedef long (*sys_call_ptr_t)(long);

const sys_call_ptr_t sys_call_table[] = {
	sys_show_all,
	sys_widget_poke,
	sys_widget_update,
	sys_widget_score,
};

long do_syscall_64(unsigned long nr, long arg)
{
	if (unlikely(nr >= ARRAY_SIZE(sys_call_table)))
		return -38;	/* -ENOSYS */
	account_syscall(nr);
	return sys_call_table[nr](arg);
}

/* init/main.c: run the device_initcall()s in link order. */
extern initcall_t __initcall_start[], __initcall_end[];
static int __initdata boot_stage;

static void __init do_initcalls(void)
{
	initcall_t *fn;

	for (fn = __initcall_start; fn < __initcall_end; fn++) {
		boot_stage++;
		if ((*fn)() < 0)
			sample_printk("initcall %d failed\n", boot_stage);
	}
}

void __init start_kernel(void)
{
	sample_printk("%s", linux_banner);
	sample_register_attr(&core_dev, &dev_attr_stats);
	do_initcalls();
	if (sample_widgets[3].refs > 1000 + boot_stage)
		widget_fatal(&sample_widgets[3]);
}
