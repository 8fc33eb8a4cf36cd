// SPDX-License-Identifier: GPL-2.0
/* main.c - banner, attribute registry and the __init entry point. */
#include "sample.h"

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

static int __initdata boot_stage;

void __init start_kernel(void)
{
	int r;

	sample_printk("%s", linux_banner);
	boot_stage = 1;
	r = alpha_probe() + beta_probe() + gamma_probe();
	boot_stage = 2;
	r += widget_score_all(sample_widgets, 4);
	sample_jiffies += (unsigned long)r + (unsigned long)sysfs_show_all();
	if (sample_widgets[3].refs > 1000 + boot_stage)
		widget_fatal(&sample_widgets[3]);
	panic_sample("Attempted to kill init!");
}
