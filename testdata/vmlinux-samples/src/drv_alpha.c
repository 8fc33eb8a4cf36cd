// SPDX-License-Identifier: GPL-2.0
/* drv_alpha.c - a driver with a sysfs "name" attribute (static name_show). */
#include "sample.h"

static int debug_level;		/* same static name in drv_beta.c */
static char alpha_buf[32];

static struct sample_device alpha_dev = {
	.id = 10, .name = "alpha0", .label = "Alpha", .driver = "alpha",
};

/* Same length as drv_beta.c's name_show(); reads ->name (offset 8). */
static noinline ssize_t name_show(struct sample_device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%s\n", dev->name);
}
static DEVICE_ATTR_RO(name);

/* lib.c's global stats_show() in shape: reads stats[1] where it reads stats[0]. */
static noinline ssize_t stats_show(struct sample_device *dev,
				   struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%ld\n", (long)dev->stats[1]);
}
static DEVICE_ATTR_RO(stats);

static int alpha_probe(void)
{
	struct widget *w = &sample_widgets[0];

	debug_level = widget_get_id(w) & 3;
	alpha_dev.id = widget_lookup(alpha_dev.id);
	sample_register_attr(&alpha_dev, &dev_attr_name);
	sample_register_attr(&alpha_dev, &dev_attr_stats);
	return debug_level + (int)stats_show(&alpha_dev, &dev_attr_stats, alpha_buf);
}
device_initcall(alpha_probe);
