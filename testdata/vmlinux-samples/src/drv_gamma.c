// SPDX-License-Identifier: GPL-2.0
/* drv_gamma.c - a third static name_show, with a different length. */
#include "sample.h"

static char gamma_buf[64];

static struct sample_device gamma_dev = {
	.id = 30, .name = "gamma0", .label = "Gamma", .driver = "gamma",
};

static noinline ssize_t name_show(struct sample_device *dev,
				  struct device_attribute *attr, char *buf)
{
	if (!dev->driver)
		return sample_sprintf(buf, "%s.%d\n", dev->name, dev->id);
	return sample_sprintf(buf, "%s:%s.%d\n", dev->driver, dev->name, dev->id);
}
static DEVICE_ATTR_RO(name);

/* Every counter: bigger than lib.c's global stats_show(). */
static noinline ssize_t stats_show(struct sample_device *dev,
				   struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%ld %ld %ld %ld %s\n", (long)dev->stats[0],
			      (long)dev->stats[1], (long)dev->stats[2], (long)dev->stats[3],
			      dev->name);
}
static DEVICE_ATTR_RO(stats);

static int gamma_probe(void)
{
	struct widget *w = &sample_widgets[2];
	int r;

	r = widget_get_id(w) + widget_check(w);
	r += widget_process(w, r & 7);
	sample_register_attr(&gamma_dev, &dev_attr_name);
	sample_register_attr(&gamma_dev, &dev_attr_stats);
	return r + (int)stats_show(&gamma_dev, &dev_attr_stats, gamma_buf);
}
device_initcall(gamma_probe);
