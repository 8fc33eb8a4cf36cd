// SPDX-License-Identifier: GPL-2.0
/* drv_gamma.c - a third static name_show, with a different length. */
#include "sample.h"

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

static int gamma_probe(void)
{
	struct widget *w = &sample_widgets[2];
	int r;

	r = widget_get_id(w) + widget_check(w);
	r += widget_process(w, r & 7);
	sample_register_attr(&gamma_dev, &dev_attr_name);
	return r;
}
device_initcall(gamma_probe);
