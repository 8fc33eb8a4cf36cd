// SPDX-License-Identifier: GPL-2.0
/* drv_beta.c - a second driver with a static name_show of the same length. */
#include "sample.h"

static int debug_level;		/* same static name in drv_alpha.c */
static char beta_buf[32];

static struct sample_device beta_dev = {
	.id = 20, .name = "beta0", .label = "Beta", .driver = "beta",
};

/* Same length as drv_alpha.c's name_show(); reads ->label (offset 16). */
static noinline ssize_t name_show(struct sample_device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%s\n", dev->label);
}
static DEVICE_ATTR_RO(name);

/* Prints the int id: one byte shorter than lib.c's global stats_show() up
 * to the call, and padded to the same 16-byte multiple. */
static noinline ssize_t stats_show(struct sample_device *dev,
				   struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%ld\n", (long)dev->id);
}
static DEVICE_ATTR_RO(stats);

static int beta_probe(void)
{
	struct widget *w = &sample_widgets[1];

	debug_level = widget_get_id(w) + widget_update(w, 2);
	sample_register_attr(&beta_dev, &dev_attr_name);
	sample_register_attr(&beta_dev, &dev_attr_stats);
	return debug_level + (int)stats_show(&beta_dev, &dev_attr_stats, beta_buf);
}
device_initcall(beta_probe);
